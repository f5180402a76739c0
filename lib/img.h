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

/* ---- display tiles (sfc-report) ----------------------------------------
 * Small PNGs encoded in memory for a report page, composited by libvips.
 * A tile whose longer side exceeds side (> 0) is shrunk to it (label maps
 * by nearest neighbour, images bilinearly); smaller ones keep their size.
 * Label tiles are PNG, image and heat tiles JPEG (quality
 * SFC_TILE_JPEG_Q, no chroma subsampling): a noisy photo compresses
 * several times better. *png_out is a malloc'd buffer of *n_out bytes
 * (free()); name is the domain of errors. */
#define SFC_TILE_JPEG_Q 90

/* An image, uint8 (H, W, 3). */
int sfc_tile_rgb(const char *name, const struct sfc_tensor *rgb, int side,
                 void **png_out, size_t *n_out);
/* A label map, uint8 (H, W), in the VOC colours. */
int sfc_tile_label(const char *name, const struct sfc_tensor *label,
                   int side, void **png_out, size_t *n_out);
/* A heat map heat (H*W floats, 0..1, clipped) in the jet colours blended
 * over the image rgb (H, W, 3): alpha * colour + (1 - alpha) * image. */
int sfc_tile_heat(const char *name, const struct sfc_tensor *rgb,
                  const float *heat, double alpha, int side, void **png_out,
                  size_t *n_out);

#endif
