/* SPDX-License-Identifier: MIT */
/* Content types by file extension, for chopin_res_file. */
#include <stddef.h>
#include <string.h>

#include "api/api.h"
#include "http/chars.h"

struct mime {
    const char *ext;
    const char *type;
};

/* Text types carry charset=utf-8: without it browsers guess (WHATWG MIME sniffing), and
 * UTF-8 is what a modern static site holds. Sorted for the reader; a linear
 * scan over ~40 entries happens once per file response, next to an open() and fstat(). */
static const struct mime mimes[] = {
    {"7z", "application/x-7z-compressed"},
    {"avif", "image/avif"},
    {"bmp", "image/bmp"},
    {"css", "text/css; charset=utf-8"},
    {"csv", "text/csv; charset=utf-8"},
    {"gif", "image/gif"},
    {"gz", "application/gzip"},
    {"htm", "text/html; charset=utf-8"},
    {"html", "text/html; charset=utf-8"},
    {"ico", "image/vnd.microsoft.icon"},
    {"jpeg", "image/jpeg"},
    {"jpg", "image/jpeg"},
    {"js", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"map", "application/json"},
    {"md", "text/markdown; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"mp3", "audio/mpeg"},
    {"mp4", "video/mp4"},
    {"oga", "audio/ogg"},
    {"ogg", "audio/ogg"},
    {"ogv", "video/ogg"},
    {"otf", "font/otf"},
    {"pdf", "application/pdf"},
    {"png", "image/png"},
    {"svg", "image/svg+xml"},
    {"tar", "application/x-tar"},
    {"ttf", "font/ttf"},
    {"txt", "text/plain; charset=utf-8"},
    {"wasm", "application/wasm"},
    {"wav", "audio/wav"},
    {"webm", "video/webm"},
    {"webmanifest", "application/manifest+json"},
    {"webp", "image/webp"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"xml", "application/xml"},
    {"zip", "application/zip"},
};

static int ext_ieq(const char *ext, const char *lower)
{
    for (; *ext && *lower; ext++, lower++)
        if (chopin__ascii_lower((unsigned char)*ext) != (unsigned char)*lower)
            return 0;
    return *ext == *lower;
}

const char *chopin__mime_type(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    const char *dot = strrchr(base, '.');
    if (dot && dot != base) { /* ".bashrc" is a name, not an extension */
        for (size_t i = 0; i < sizeof(mimes) / sizeof(mimes[0]); i++)
            if (ext_ieq(dot + 1, mimes[i].ext))
                return mimes[i].type;
    }
    return "application/octet-stream";
}
