#ifndef STRIVE_VIPS_H
#define STRIVE_VIPS_H

#include <stddef.h>

/// libvips, loaded at run time (dlopen of libvips.so.42): the server builds and starts without it, and
/// only image transformations need it. Each call returns 0 on success; on failure, `error` holds why.

/// Names the library `strive_vips_load` opens (default libvips.so.42); only a call before the first load counts.
void strive_vips_use(const char *library);

/// Loads and initialises libvips once; later calls repeat the first outcome.
int strive_vips_load(char *error, size_t error_length);

/// The image's header without decoding its pixels: dimensions, page count and the loader's name.
int strive_vips_probe(const void *buffer, size_t length, int *width, int *height, int *pages, char *loader, size_t loader_length,
                      char *error, size_t error_length);

/// Whether libvips can write `suffix` (".webp", ".avif", ".jpg", ".png").
int strive_vips_can_save(const char *suffix);

/// Resize modes: 0 cover (fill the box, crop the centre), 1 contain (fit inside the box), 2 fill (stretch).
/// `height` 0 keeps the aspect ratio from `width`, and the reverse; cover and contain never enlarge. EXIF
/// orientation is applied. The result,
/// written with `suffix` (e.g. ".webp[Q=80]"), is freed with `strive_vips_free`.
int strive_vips_transform(const void *buffer, size_t length, int width, int height, int mode, const char *suffix, void **output,
                          size_t *output_length, int *output_width, int *output_height, char *error, size_t error_length);

void strive_vips_free(void *pointer);

#endif
