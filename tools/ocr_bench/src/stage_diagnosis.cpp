#include "stage_diagnosis.hpp"

#include <algorithm>
#include <filesystem>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <utility>

namespace lostcard::bench {
namespace {

namespace fs = std::filesystem;
using cloud::FrameView;
using cloud::LinePrep;

// The digits of a reading, best choice per position ('?' and other symbols left out).
std::string digitsOf(const cloud::LineReading& reading) {
  std::string out;
  for (const auto& choices : reading.positions) {
    if (!choices.empty() && choices.front().symbol >= '0' && choices.front().symbol <= '9') {
      out.push_back(choices.front().symbol);
    }
  }
  return out;
}

int editDistance(const std::string& a, const std::string& b) {
  std::vector<int> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) {
    row[j] = static_cast<int>(j);
  }
  for (std::size_t i = 1; i <= a.size(); ++i) {
    int diagonal = row[0];
    row[0] = static_cast<int>(i);
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const int above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace

StageDiagnosis::StageDiagnosis(const std::string& tessdata_dir, const std::string& models_dir)
    : reader_(cloud::LineReaderOptions{
          tessdata_dir, (fs::path(models_dir) / "tessdata/configs/lostcard-card-digits").string()}),
      classifier_(cloud::DigitClassifier::load(cloud::digitModelPath(models_dir))),
      groupings_(cloud::printedGroupings(cloud::loadCardFormats(models_dir))) {}

StageVerdict StageDiagnosis::diagnose(const cloud::CardImages& images,
                                      const cloud::CardReading& reading, const std::string& truth) {
  StageVerdict verdict;
  const auto consider = [&](const std::string& digits, std::string by) {
    const int edits = editDistance(digits, truth);
    if (verdict.best_edits < 0 || edits < verdict.best_edits) {
      verdict.best_edits = edits;
      verdict.best_by = std::move(by);
    }
  };
  bool any_view = false;
  for (const auto& [jpegs, face] :
       {std::pair{&images.front_jpegs, "front"}, std::pair{&images.back_jpegs, "back"}}) {
    for (const std::string& jpeg : *jpegs) {
      const cv::Mat raw(1, static_cast<int>(jpeg.size()), CV_8UC1, const_cast<char*>(jpeg.data()));
      const FrameView view = cloud::viewOfFrame(cv::imdecode(raw, cv::IMREAD_COLOR));
      if (view.kind == FrameView::Kind::kNothing) {
        continue;
      }
      any_view = true;
      // As the recognizer turns it: as is, 180 degrees, mirrored left-right, top-bottom.
      for (const int flip : {-2, -1, 1, 0}) {
        cv::Mat oriented;
        if (flip == -2) {
          oriented = view.image;
        } else if (flip == -1) {
          cv::rotate(view.image, oriented, cv::ROTATE_180);
        } else {
          cv::flip(view.image, oriented, flip);
        }
        const std::vector<cv::Rect> lines =
            view.kind == FrameView::Kind::kLineCrop
                ? std::vector<cv::Rect>{cv::Rect(0, 0, oriented.cols, oriented.rows)}
                : cloud::locateNumberLine(oriented);
        for (std::size_t l = 0; l < lines.size(); ++l) {
          const std::string where = std::string(face) + " flip " + std::to_string(flip) + " line " +
                                    std::to_string(l + 1);
          for (const LinePrep prep : {LinePrep::kBinary, LinePrep::kGray, LinePrep::kRelief}) {
            consider(digitsOf(reader_.readLine(oriented, lines[l], prep).reading),
                     std::string("tesseract ") + cloud::toString(prep) + " " + where);
          }
          for (const LinePrep prep : {LinePrep::kGray, LinePrep::kRelief, LinePrep::kHeight}) {
            for (const bool by_pitch : {false, true}) {
              const cloud::LineReading glyphs = cloud::readLineGlyphs(
                  classifier_, oriented, lines[l], nullptr, prep, by_pitch ? &groupings_ : nullptr);
              consider(digitsOf(glyphs), std::string("classifier ") + cloud::toString(prep) +
                                             (by_pitch ? " by pitch " : " ") + where);
            }
          }
        }
      }
    }
  }
  if (reading.outcome == cloud::ReadOutcome::kAmbiguous) {
    verdict.stage = "disagree";
  } else if (!any_view) {
    verdict.stage = "no-card";
  } else if (verdict.best_edits == 0) {
    verdict.stage = "rejected";
  } else if (verdict.best_edits > 0 && verdict.best_edits <= kCloseEdits) {
    verdict.stage = "misread";
  } else {
    verdict.stage = "no-line";
  }
  return verdict;
}

}  // namespace lostcard::bench
