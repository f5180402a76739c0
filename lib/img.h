/* SPDX-License-Identifier: MIT */
/* img.h: images and label maps. The only module that includes vips.h.
 *
 * Images: any JPEG or PNG (grayscale, RGBA and 16-bit converted) loads as
 * uint8 (H, W, 3) RGB. Label maps: 8-bit PNG; a palette PNG gives its
 * palette indices, a grayscale PNG its values; written as indexed PNGs
 * with the VOC palette (pixel value = class id, 255 = ignore), which PIL
 * opens as mode "P". Writes are atomic. Errors name the file:
 * "x.jpg: not a JPEG or PNG". */
#ifndef SFC_IMG_H
#define SFC_IMG_H

#include <stdint.h>

#include "tensor.h"

/* Load an image as uint8 (H, W, 3). */
int sfc_image_load(const char *path, struct sfc_tensor *out);
/* Width and height from the header only. */
int sfc_image_size(const char *path, int *w_out, int *h_out);
/* Save uint8 (H, W, 3) as JPEG (quality 1..100) or PNG, atomically. */
int sfc_image_save_jpeg(const char *path, const struct sfc_tensor *rgb,
                        int quality);
int sfc_image_save_png(const char *path, const struct sfc_tensor *rgb);

/* Load a label PNG as uint8 (H, W). */
int sfc_label_load(const char *path, struct sfc_tensor *out);
/* Save uint8 (H, W) as an indexed PNG with the VOC palette, atomically. */
int sfc_label_save(const char *path, const struct sfc_tensor *label);

/* The 256-entry VOC colour map (bit-interleaved; 255 = (224, 224, 192)). */
void sfc_voc_palette(uint8_t pal[256][3]);

#endif
