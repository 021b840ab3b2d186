/* standalone_main.c -- replay a fuzz corpus without libFuzzer, so every
 * build (gcc, ASan+UBSan) runs the committed inputs as a ctest.
 *
 *   fuzz_replay_NAME DIR_OR_FILE...
 *
 * Each input is copied into a buffer of exactly its size (so ASan catches
 * reads one past the end, as libFuzzer would) and passed to
 * LLVMFuzzerTestOneInput. Exits 1 if no input was found.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    size_t got = buf && n > 0 ? fread(buf, 1, (size_t)n, f) : 0;
    fclose(f);
    if (!buf)
        return -1;
    uint8_t *exact = malloc(got ? got : 1);
    if (!exact) {
        free(buf);
        return -1;
    }
    memcpy(exact, buf, got);
    free(buf);
    LLVMFuzzerTestOneInput(exact, got);
    free(exact);
    return 0;
}

static int run_path(const char *path, int *count) {
    struct stat st;
    if (stat(path, &st) != 0) {
        perror(path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        (*count)++;
        return run_file(path);
    }
    DIR *d = opendir(path);
    if (!d)
        return -1;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char child[4096];
        snprintf(child, sizeof(child), "%s/%s", path, e->d_name);
        if (run_path(child, count) != 0)
            rc = -1;
    }
    closedir(d);
    return rc;
}

int main(int argc, char **argv) {
    int count = 0, rc = 0;
    for (int i = 1; i < argc; i++) {
        if (run_path(argv[i], &count) != 0)
            rc = 1;
    }
    printf("replayed %d inputs\n", count);
    return rc || count == 0 ? 1 : 0;
}
