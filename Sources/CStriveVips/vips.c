#include "CStriveVips.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

// libvips's own declarations are not needed to build: the few functions used are looked up by name, and
// their images are opaque pointers. Variadic functions are called from C, which Swift cannot do.
typedef struct VipsImage VipsImage;
enum { VIPS_SIZE_DOWN = 2, VIPS_SIZE_FORCE = 3, VIPS_INTERESTING_NONE = 0, VIPS_INTERESTING_CENTRE = 1 };
#define VIPS_MAX_COORD 10000000

static struct {
    int (*init)(const char *);
    const char *(*error_buffer)(void);
    void (*error_clear)(void);
    VipsImage *(*new_from_buffer)(const void *, size_t, const char *, ...);
    int (*thumbnail_buffer)(void *, size_t, VipsImage **, int, ...);
    int (*write_to_buffer)(VipsImage *, const char *, void **, size_t *, ...);
    int (*get_width)(const VipsImage *);
    int (*get_height)(const VipsImage *);
    int (*get_n_pages)(VipsImage *);
    const char *(*find_load_buffer)(const void *, size_t);
    const char *(*find_save_buffer)(const char *);
    void (*cache_set_max)(int);
    void (*object_unref)(void *);
    void (*free)(void *);
} vips;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char library_name[1024] = "libvips.so.42";
static char load_error[512];
static int loaded = -1;

static void *symbol(void *library, const char *name) {
    void *found = dlsym(library, name);
    if (found == NULL && load_error[0] == 0) snprintf(load_error, sizeof load_error, "libvips lacks %s", name);
    return found;
}

static void load(void) {
    void *library = dlopen(library_name, RTLD_NOW | RTLD_GLOBAL);
    if (library == NULL) {
        snprintf(load_error, sizeof load_error,
                 "libvips is not installed (%s); install Debian's libvips42 (or point STRIVE_STORAGE_IMAGE_LIBRARY at it) "
                 "to transform images", dlerror());
        return;
    }
    vips.init = symbol(library, "vips_init");
    vips.error_buffer = symbol(library, "vips_error_buffer");
    vips.error_clear = symbol(library, "vips_error_clear");
    vips.new_from_buffer = symbol(library, "vips_image_new_from_buffer");
    vips.thumbnail_buffer = symbol(library, "vips_thumbnail_buffer");
    vips.write_to_buffer = symbol(library, "vips_image_write_to_buffer");
    vips.get_width = symbol(library, "vips_image_get_width");
    vips.get_height = symbol(library, "vips_image_get_height");
    vips.get_n_pages = symbol(library, "vips_image_get_n_pages");
    vips.find_load_buffer = symbol(library, "vips_foreign_find_load_buffer");
    vips.find_save_buffer = symbol(library, "vips_foreign_find_save_buffer");
    vips.cache_set_max = symbol(library, "vips_cache_set_max");
    vips.object_unref = symbol(library, "g_object_unref");
    vips.free = symbol(library, "g_free");
    if (load_error[0] != 0) return;
    if (vips.init("strive") != 0) {
        snprintf(load_error, sizeof load_error, "libvips did not initialise: %s", vips.error_buffer());
        return;
    }
    // Each request transforms its own bytes once: libvips's operation cache would only hold memory.
    vips.cache_set_max(0);
    loaded = 0;
}

static int fail(char *error, size_t length, const char *what) {
    snprintf(error, length, "%s: %s", what, vips.error_buffer ? vips.error_buffer() : "");
    if (vips.error_clear) vips.error_clear();
    return -1;
}

void strive_vips_use(const char *library) {
    snprintf(library_name, sizeof library_name, "%s", library);
}

int strive_vips_load(char *error, size_t error_length) {
    pthread_once(&once, load);
    if (loaded != 0) snprintf(error, error_length, "%s", load_error);
    return loaded;
}

int strive_vips_probe(const void *buffer, size_t length, int *width, int *height, int *pages, char *loader, size_t loader_length,
                      char *error, size_t error_length) {
    if (strive_vips_load(error, error_length) != 0) return -1;
    const char *found = vips.find_load_buffer(buffer, length);
    if (found == NULL) {
        if (vips.error_clear) vips.error_clear();
        snprintf(error, error_length, "not an image libvips can read");
        return -1;
    }
    snprintf(loader, loader_length, "%s", found);
    // Opening reads the header only: pixels are decoded when something asks for them.
    VipsImage *image = vips.new_from_buffer(buffer, length, "", NULL);
    if (image == NULL) return fail(error, error_length, "the image's header is unreadable");
    *width = vips.get_width(image);
    *height = vips.get_height(image);
    *pages = vips.get_n_pages(image);
    vips.object_unref(image);
    return 0;
}

int strive_vips_can_save(const char *suffix) {
    char ignored[8];
    if (strive_vips_load(ignored, sizeof ignored) != 0) return 0;
    int can = vips.find_save_buffer(suffix) != NULL;
    if (!can && vips.error_clear) vips.error_clear();
    return can;
}

int strive_vips_transform(const void *buffer, size_t length, int width, int height, int mode, const char *suffix, void **output,
                          size_t *output_length, int *output_width, int *output_height, char *error, size_t error_length) {
    if (strive_vips_load(error, error_length) != 0) return -1;
    VipsImage *image = NULL;
    int box_width = width > 0 ? width : VIPS_MAX_COORD;
    int box_height = height > 0 ? height : VIPS_MAX_COORD;
    int result;
    if (mode == 2 && width > 0 && height > 0) {
        result = vips.thumbnail_buffer((void *)buffer, length, &image, box_width, "height", box_height, "size", VIPS_SIZE_FORCE, NULL);
    } else if (mode == 0 && width > 0 && height > 0) {
        result = vips.thumbnail_buffer((void *)buffer, length, &image, box_width, "height", box_height, "size", VIPS_SIZE_DOWN, "crop",
                                       VIPS_INTERESTING_CENTRE, NULL);
    } else {
        // Never enlarged: a thumbnail larger than its original only costs bytes.
        result = vips.thumbnail_buffer((void *)buffer, length, &image, box_width, "height", box_height, "size", VIPS_SIZE_DOWN, NULL);
    }
    if (result != 0) return fail(error, error_length, "the image could not be resized");
    *output_width = vips.get_width(image);
    *output_height = vips.get_height(image);
    result = vips.write_to_buffer(image, suffix, output, output_length, NULL);
    vips.object_unref(image);
    if (result != 0) return fail(error, error_length, "the image could not be encoded");
    return 0;
}

void strive_vips_free(void *pointer) {
    if (pointer != NULL && vips.free != NULL) vips.free(pointer);
}
