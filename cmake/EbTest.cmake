# eb_add_unit_test(NAME SOURCES...): a cmocka test linked with eb_core,
# registered as ctest `unit.NAME` with label `unit`.
pkg_check_modules(CMOCKA REQUIRED IMPORTED_TARGET cmocka)

function(eb_add_unit_test name)
  add_executable(test_${name} ${ARGN})
  target_link_libraries(test_${name} PRIVATE eb_core PkgConfig::CMOCKA)
  eb_target_warnings(test_${name})
  add_test(NAME unit.${name} COMMAND test_${name})
  set_tests_properties(unit.${name} PROPERTIES LABELS unit TIMEOUT 120)
endfunction()

# eb_add_py_test(LAYER NAME SCRIPT [TIMEOUT s]): a Python unittest module run
# with Debian's interpreter (/usr/bin/python3: the one that sees
# python3-confluent-kafka, python3-redis, python3-jsonschema), as ctest
# `LAYER.NAME` with label LAYER. The script finds binaries through the
# environment set here.
function(eb_add_py_test layer name script)
  cmake_parse_arguments(A "" "TIMEOUT" "" ${ARGN})
  if(NOT A_TIMEOUT)
    set(A_TIMEOUT 300)
  endif()
  add_test(NAME ${layer}.${name}
           COMMAND /usr/bin/python3 -u ${script} -v
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(${layer}.${name} PROPERTIES
    LABELS ${layer} TIMEOUT ${A_TIMEOUT}
    ENVIRONMENT "EB_BIN=$<TARGET_FILE:expiry-bridge>;EB_MOCK_KAFKA=$<TARGET_FILE:eb_mock_kafka>;EB_SOURCE_DIR=${CMAKE_SOURCE_DIR};EB_BUILD_DIR=${CMAKE_BINARY_DIR};PYTHONPATH=${CMAKE_SOURCE_DIR}/tests/support")
endfunction()
