# lostcard_recognition: see cloud/CMakeLists.txt
