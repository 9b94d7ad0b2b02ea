# lostcard_gateway: see cloud/CMakeLists.txt
