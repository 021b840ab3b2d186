# EB_SANITIZE=address,undefined applies to every target in the tree, so the
# whole ctest suite (daemon, helpers, tests) runs instrumented.
if(EB_SANITIZE)
  add_compile_options(-fsanitize=${EB_SANITIZE} -fno-sanitize-recover=all
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=${EB_SANITIZE})
endif()
