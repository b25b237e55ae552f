// Hosts the precompiled prefix of headers.self_contained (tests/CMakeLists.txt).
