# eb_add_fuzz_target(NAME SOURCE): tests/fuzz/fuzz_NAME.c defines only
# LLVMFuzzerTestOneInput.
#  - Always: a replay binary (standalone_main.c) that feeds every file of
#    tests/fuzz/corpus/NAME/ to it, registered as ctest fuzz.NAME, so gcc
#    and ASan builds run the committed corpus.
#  - With EB_BUILD_FUZZERS=ON (clang): the libFuzzer binary fuzz_NAME, linked
#    with $LIB_FUZZING_ENGINE when set (OSS-Fuzz style), else -fsanitize=fuzzer.
function(eb_add_fuzz_target name src)
  set(corpus ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/${name})
  add_executable(fuzz_replay_${name} ${src} ${CMAKE_SOURCE_DIR}/tests/fuzz/standalone_main.c)
  target_link_libraries(fuzz_replay_${name} PRIVATE eb_core)
  eb_target_warnings(fuzz_replay_${name})
  add_test(NAME fuzz.${name} COMMAND fuzz_replay_${name} ${corpus})
  set_tests_properties(fuzz.${name} PROPERTIES LABELS fuzz TIMEOUT 300)
  if(EB_BUILD_FUZZERS)
    add_executable(fuzz_${name} ${src})
    if(DEFINED ENV{LIB_FUZZING_ENGINE})
      target_link_libraries(fuzz_${name} PRIVATE eb_core $ENV{LIB_FUZZING_ENGINE})
    else()
      target_compile_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
      target_link_libraries(fuzz_${name} PRIVATE eb_core -fsanitize=fuzzer)
    endif()
  endif()
endfunction()
