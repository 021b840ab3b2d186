/* version.h -- the one place the version is written; CMake parses it. */
#ifndef EB_VERSION_H
#define EB_VERSION_H

#define EB_VERSION_STR "0.1.0"

#endif
