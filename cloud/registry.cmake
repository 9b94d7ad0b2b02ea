# lostcard_registry: see cloud/CMakeLists.txt
