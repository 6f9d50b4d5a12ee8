# lastframe_module(NAME SOURCES ... [DEPS ...] [PRIVATE_DEPS ...] [TESTS ...] [TEST_DEPS ...])
# One folder under src/ is one module: a static library lf_NAME, and, when it
# has tests, one GoogleTest binary lf_NAME_test whose cases CTest lists one by one
# (not in a LASTFRAME_FUZZ build, which builds the libraries and fuzz/ only).
# DEPS are part of the module's interface (its headers include them);
# PRIVATE_DEPS only its .cpp files use. Which module may include which is
# scripts/check-layering.py's to say (run by the test command).
function(lastframe_module name)
  cmake_parse_arguments(M "" "" "SOURCES;DEPS;PRIVATE_DEPS;TESTS;TEST_DEPS" ${ARGN})
  add_library(lf_${name} STATIC ${M_SOURCES})
  target_include_directories(lf_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(lf_${name} PUBLIC ${M_DEPS} PRIVATE ${M_PRIVATE_DEPS})
  if(M_TESTS AND NOT LASTFRAME_FUZZ)
    lastframe_test(lf_${name}_test SOURCES ${M_TESTS} DEPS lf_${name} ${M_TEST_DEPS})
  endif()
endfunction()

# lastframe_test(TARGET SOURCES ... DEPS ... [LABELS ...] [TIMEOUT S]): a GoogleTest binary
# registered with CTest, each case given TIMEOUT seconds (default 120). The label "heavy" marks suites that run once, in the
# normal build (scripts/test.sh leaves them out of the sanitizer builds).
function(lastframe_test target)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  add_executable(${target} ${T_SOURCES})
  target_link_libraries(${target} PRIVATE ${T_DEPS} GTest::gtest GTest::gtest_main GTest::gmock)
  # Tests that run scripts of the source tree (tests/s3rver, tests/e2e/s3_clients) find them here.
  target_compile_definitions(${target} PRIVATE LASTFRAME_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  gtest_discover_tests(${target}
    DISCOVERY_MODE PRE_TEST
    PROPERTIES ENVIRONMENT "LASTFRAME_BINARY=$<TARGET_FILE:lastframe>"
               TIMEOUT ${T_TIMEOUT}
               LABELS "${T_LABELS}")
endfunction()
