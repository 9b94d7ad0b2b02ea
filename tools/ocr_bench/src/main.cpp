// lostcard-ocr-bench: how well and how fast the recognizer reads a labeled set of card photos.
//
//   lostcard-ocr-bench DIR [--limit N] [--why] [--tessdata-dir D] [--models-dir M]
//
// DIR/labels.tsv holds "<file>\t<number>" lines. <file> is a card folder with front.jpg and
// back.jpg (what lostcard-cardgen writes), or one image (a whole card face or just the number
// line; PNGs are re-encoded to JPEG in memory, since the recognizer takes JPEG), passed as the
// only front frame. Every card is read by one Recognizer on one thread (OpenMP limited to one
// thread, as the cloud runs it, and OpenCV's thread pool off). One line per card:
//
//   <file>\t<read|wrong|unread>\t<ms>\t<last four digits of the truth, of a wrong reading, why>
//
// With --why, an unread card's line ends with the stage where it was lost (stage_diagnosis.hpp:
// no-card, no-line, misread, rejected, disagree), and the totals are broken down by stage and
// number style too.
//
// then, when DIR/details.tsv exists (cardgen writes it), the counts by number style, face and
// grouping, and last EXACTLY:
//
//   ocr-bench: images=M read=R wrong=W unread=U median_ms=X p95_ms=Y tesseract_line_ms=T
//
// read: exactly the labeled number; wrong: a number that is not it; unread: declared difficult
// (any outcome but kRead, or the number read with a confidence below kMinTrustedConfidence,
// which the deposit decision makes a difficult card). X, Y: wall-clock time of one whole
// Recognizer::read (decoding the JPEGs included, file reading not). T: the median time of one bare
// Tesseract single-line read (LSTM, PSM 7, digit whitelist: SetImage + GetUTF8Text) of a
// number-line crop of each card, cut with the recognizer's own stages (findCard, straighten,
// locateNumberLine), or of the whole image when it is a crop already. So median_ms /
// tesseract_line_ms is the pipeline's cost in line reads. Exit 0 whenever it ran: it is a
// benchmark, not a test. Full card numbers are never printed.
#include <tesseract/baseapi.h>
#include <unistd.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <opencv2/core/utility.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "lostcard/cloud/recognition.hpp"
#include "lostcard/cloud/recognition_stages.hpp"
#include "stage_diagnosis.hpp"

namespace fs = std::filesystem;
namespace po = boost::program_options;
using lostcard::cloud::CardImages;
using lostcard::cloud::CardReading;
using lostcard::cloud::ReadOutcome;
using Clock = std::chrono::steady_clock;

namespace {

struct Label {
  std::string file;
  std::string number;  // digits; empty for a card with no number
};

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::vector<Label> readLabels(const fs::path& path) {
  std::ifstream in(path);
  if (!in) {
    throw std::runtime_error("cannot read " + path.string());
  }
  std::vector<Label> labels;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') {
      line.pop_back();
    }
    if (line.empty() || line[0] == '#') {
      continue;
    }
    const auto tab = line.find('\t');
    labels.push_back(
        Label{line.substr(0, tab), tab == std::string::npos ? "" : line.substr(tab + 1)});
  }
  return labels;
}

// details.tsv from lostcard-cardgen: name -> its columns (style, font, grouping, number_on, ...).
std::map<std::string, std::vector<std::string>> readDetails(const fs::path& path) {
  std::map<std::string, std::vector<std::string>> details;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') {
      continue;
    }
    std::vector<std::string> cols;
    std::istringstream fields(line);
    std::string field;
    while (std::getline(fields, field, '\t')) {
      cols.push_back(field);
    }
    if (cols.size() >= 2) {
      details[cols[0]] = std::vector<std::string>(cols.begin() + 1, cols.end());
    }
  }
  return details;
}

bool isJpeg(const std::string& bytes) {
  return bytes.size() > 3 && static_cast<unsigned char>(bytes[0]) == 0xFF &&
         static_cast<unsigned char>(bytes[1]) == 0xD8;
}

// The image's bytes as a JPEG (re-encoded at high quality when it is another format).
std::optional<std::string> asJpeg(const std::string& bytes) {
  if (isJpeg(bytes)) {
    return bytes;
  }
  const cv::Mat raw(1, static_cast<int>(bytes.size()), CV_8UC1, const_cast<char*>(bytes.data()));
  const cv::Mat image = cv::imdecode(raw, cv::IMREAD_COLOR);
  if (image.empty()) {
    return std::nullopt;
  }
  std::vector<uchar> out;
  if (!cv::imencode(".jpg", image, out, {cv::IMWRITE_JPEG_QUALITY, 95})) {
    return std::nullopt;
  }
  return std::string(out.begin(), out.end());
}

std::string lastFour(const std::string& digits) {
  if (digits.empty()) {
    return "(none)";
  }
  return "..." + digits.substr(digits.size() - std::min<std::size_t>(4, digits.size()));
}

// Tesseract as a plain line reader, for the reference time: LSTM, one text line, digits (and
// the group space) only, no dictionaries, the same as the recognizer asks of it.
class BareLineReader {
 public:
  explicit BareLineReader(const std::string& tessdata_dir) {
    std::vector<std::string> names = {
        "debug_file",       "load_system_dawg",  "load_freq_dawg",   "load_punc_dawg",
        "load_number_dawg", "load_unambig_dawg", "load_bigram_dawg", "tessedit_char_whitelist"};
    std::vector<std::string> values = {"/dev/null", "0", "0", "0", "0", "0", "0", "0123456789 "};
    if (api_.Init(tessdata_dir.empty() ? nullptr : tessdata_dir.c_str(), "eng",
                  tesseract::OEM_LSTM_ONLY, nullptr, 0, &names, &values, false) != 0) {
      throw std::runtime_error("Tesseract could not initialise");
    }
    api_.SetPageSegMode(tesseract::PSM_SINGLE_LINE);
  }
  ~BareLineReader() { api_.End(); }

  // Milliseconds for SetImage + GetUTF8Text of one grey line image.
  double timeOneRead(const cv::Mat& gray) {
    const auto start = Clock::now();
    api_.SetImage(gray.data, gray.cols, gray.rows, 1, static_cast<int>(gray.step));
    std::unique_ptr<char[]> text(api_.GetUTF8Text());
    const auto end = Clock::now();
    api_.Clear();
    return std::chrono::duration<double, std::milli>(end - start).count();
  }

 private:
  tesseract::TessBaseAPI api_;
};

// A number-line crop of one frame (grey), found with the recognizer's own stages; the whole
// image when it is not card-shaped (a crop of the number line already).
std::optional<cv::Mat> numberLineCrop(const std::string& jpeg) {
  const cv::Mat raw(1, static_cast<int>(jpeg.size()), CV_8UC1, const_cast<char*>(jpeg.data()));
  const cv::Mat frame = cv::imdecode(raw, cv::IMREAD_COLOR);
  if (frame.empty()) {
    return std::nullopt;
  }
  const auto view = lostcard::cloud::viewOfFrame(frame);
  if (view.kind != lostcard::cloud::FrameView::Kind::kCard) {
    if (view.kind == lostcard::cloud::FrameView::Kind::kNothing) {
      return std::nullopt;
    }
    cv::Mat gray;
    cv::cvtColor(view.image, gray, cv::COLOR_BGR2GRAY);
    return gray;  // a crop of the line itself
  }
  const cv::Mat& card = view.image;
  const auto lines = lostcard::cloud::locateNumberLine(card);
  if (lines.empty()) {
    return std::nullopt;
  }
  const cv::Rect box = lines.front();
  const int pad = std::max(6, box.height / 4);
  const cv::Rect crop =
      cv::Rect(box.x - pad, box.y - pad, box.width + 2 * pad, box.height + 2 * pad) &
      cv::Rect(0, 0, card.cols, card.rows);
  cv::Mat gray;
  cv::cvtColor(card(crop), gray, cv::COLOR_BGR2GRAY);
  return gray;
}

double percentile(std::vector<double> values, double p) {
  if (values.empty()) {
    return 0.0;
  }
  std::sort(values.begin(), values.end());
  if (p == 50.0) {
    const std::size_t n = values.size();
    return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
  }
  // Nearest rank.
  const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * values.size()));
  return values[std::clamp<std::size_t>(rank, 1, values.size()) - 1];
}

struct Tally {
  int images = 0;
  int read = 0;
  int wrong = 0;
  int unread = 0;
};

}  // namespace

int main(int argc, char** argv) {
  // Tesseract parallelises with OpenMP; the bench measures one thread, as the cloud runs one
  // Recognizer per worker thread. The variable must be set before the OpenMP runtime starts.
  if (std::getenv("OMP_THREAD_LIMIT") == nullptr) {
    ::setenv("OMP_THREAD_LIMIT", "1", 1);
    ::execv("/proc/self/exe", argv);
    // Without /proc, run on with OpenMP's default.
  }
  // OpenCV's own thread pool too: every stage runs on the calling thread.
  cv::setNumThreads(1);
  std::string dir;
  std::string tessdata_dir;
  std::string models_dir;
  int limit = 0;
  bool why = false;
  po::options_description options(
      "lostcard-ocr-bench DIR: reads DIR/labels.tsv and its images, prints a line per image and "
      "the totals");
  options.add_options()("help,h", "show this help")("limit", po::value(&limit)->default_value(0),
                                                    "read only the first N images (0: all)")(
      "why", po::bool_switch(&why), "diagnose the stage where each unread card was lost")(
      "tessdata-dir", po::value(&tessdata_dir)->default_value(""),
      "Tesseract data folder (default: the system's)")(
      "models-dir", po::value(&models_dir)->default_value(LOSTCARD_DEFAULT_MODELS_DIR),
      "lostcard models/ folder (\"\": the recognizer's built-in settings)");
  po::options_description hidden;
  hidden.add_options()("dir", po::value(&dir));
  po::options_description all;
  all.add(options).add(hidden);
  po::positional_options_description positional;
  positional.add("dir", 1);
  try {
    po::variables_map vm;
    po::store(po::command_line_parser(argc, argv).options(all).positional(positional).run(), vm);
    if (vm.count("help") != 0) {
      std::cout << options << "\n";
      return 0;
    }
    po::notify(vm);
    if (dir.empty()) {
      std::cerr << "lostcard-ocr-bench: give the folder to read\n" << options << "\n";
      return 2;
    }
  } catch (const po::error& e) {
    std::cerr << "lostcard-ocr-bench: " << e.what() << "\n" << options << "\n";
    return 2;
  }

  try {
    std::vector<Label> labels = readLabels(fs::path(dir) / "labels.tsv");
    if (limit > 0 && static_cast<std::size_t>(limit) < labels.size()) {
      labels.resize(limit);
    }
    const auto details = readDetails(fs::path(dir) / "details.tsv");
    lostcard::cloud::Recognizer recognizer({tessdata_dir, models_dir, {}});
    BareLineReader bare(tessdata_dir);
    std::optional<lostcard::bench::StageDiagnosis> diagnosis;
    if (why) {
      diagnosis.emplace(tessdata_dir, models_dir);
    }

    Tally total;
    std::map<std::string, Tally> by_kind;  // "style=flat" -> its counts
    std::vector<double> card_ms;
    std::vector<double> line_ms;
    for (const Label& label : labels) {
      const fs::path path = fs::path(dir) / label.file;
      CardImages images;
      if (fs::is_directory(path)) {
        for (const auto& [face, out] : {std::pair{"front.jpg", &images.front_jpegs},
                                        std::pair{"back.jpg", &images.back_jpegs}}) {
          if (fs::is_regular_file(path / face)) {
            out->push_back(slurp(path / face));
          }
        }
      } else if (fs::is_regular_file(path)) {
        if (auto jpeg = asJpeg(slurp(path))) {
          images.front_jpegs.push_back(std::move(*jpeg));
        } else {
          images.front_jpegs.push_back(slurp(path));  // the recognizer will call it a bad image
        }
      } else {
        std::cout << label.file << "\tmissing\n";
        continue;
      }

      const auto start = Clock::now();
      const CardReading reading = recognizer.read(images);
      const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
      card_ms.push_back(ms);

      // The reference: one bare line read of this card's number-line crop.
      for (const auto* frames : {&images.front_jpegs, &images.back_jpegs}) {
        if (!frames->empty()) {
          if (const auto crop = numberLineCrop(frames->front())) {
            line_ms.push_back(bare.timeOneRead(*crop));
            break;
          }
        }
      }

      std::string verdict;
      std::string note;
      std::string stage;  // --why: where an unread card was lost
      // The right number read with a confidence the deposit decision would not trust is a
      // difficult card, as it would be in service (a wrong number counts as wrong whatever its
      // confidence).
      const bool trusted = reading.confidence >= lostcard::cloud::kMinTrustedConfidence;
      if (reading.outcome == ReadOutcome::kRead && reading.number == label.number && !trusted) {
        verdict = "unread";
        note = lastFour(label.number) + " read with low confidence " +
               std::to_string(reading.confidence).substr(0, 4);
      } else if (reading.outcome == ReadOutcome::kRead && reading.number == label.number) {
        verdict = "read";
        note = lastFour(label.number);
      } else if (reading.outcome == ReadOutcome::kRead) {
        verdict = "wrong";
        note = "truth " + lastFour(label.number) + " read " + lastFour(reading.number);
      } else {
        verdict = "unread";
        note = lastFour(label.number) + " " + lostcard::cloud::toString(reading.outcome) + ": " +
               reading.detail;
        if (diagnosis && !label.number.empty()) {
          const auto v = diagnosis->diagnose(images, reading, label.number);
          note = "why=" + v.stage + " edits=" + std::to_string(v.best_edits) + " by=" + v.best_by +
                 "\t" + note;
          stage = v.stage;
        }
      }
      std::printf("%s\t%s\t%.1f\t%s\n", label.file.c_str(), verdict.c_str(), ms, note.c_str());
      std::fflush(stdout);

      std::vector<std::string> kinds = {"all"};
      if (const auto it = details.find(label.file); it != details.end()) {
        static const std::vector<std::string> kColumns = {"style", "font", "grouping", "number_on",
                                                          "face_up"};
        for (std::size_t i = 0; i < kColumns.size() && i < it->second.size(); ++i) {
          kinds.push_back(kColumns[i] + "=" + it->second[i]);
        }
      }
      if (!stage.empty()) {
        const std::size_t n = kinds.size();
        for (std::size_t i = 0; i < n; ++i) {
          if (kinds[i] == "all" || kinds[i].rfind("style=", 0) == 0) {
            kinds.push_back("why=" + stage + " " + kinds[i]);
          }
        }
      }
      for (const auto& kind : kinds) {
        Tally& t = kind == "all" ? total : by_kind[kind];
        ++t.images;
        (verdict == "read" ? t.read : verdict == "wrong" ? t.wrong : t.unread) += 1;
      }
    }
    for (const auto& [kind, t] : by_kind) {
      std::printf("by %s: images=%d read=%d wrong=%d unread=%d\n", kind.c_str(), t.images, t.read,
                  t.wrong, t.unread);
    }
    std::printf(
        "ocr-bench: images=%d read=%d wrong=%d unread=%d median_ms=%.1f p95_ms=%.1f "
        "tesseract_line_ms=%.1f\n",
        total.images, total.read, total.wrong, total.unread, percentile(card_ms, 50),
        percentile(card_ms, 95), percentile(line_ms, 50));
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "lostcard-ocr-bench: " << e.what() << "\n";
    return 1;
  }
}
