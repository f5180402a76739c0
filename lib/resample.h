/* SPDX-License-Identifier: MIT */
/* resample.h: image resizing as the reference's data pipeline does it with
 * PIL (sfc-reference.md §10.19): Image.resize with BICUBIC (Keys cubic,
 * a = -0.5, support widened by the scale when downscaling, i.e.
 * antialiased) and NEAREST, on uint8 images, bit-exact with Pillow's
 * fixed-point separable resampler (horizontal pass, then vertical, each
 * rounded and clipped to 8 bits), and the size rule of the reference's
 * pil_rescale: round-half-to-even of size * scale (numpy's np.round). */
#ifndef SFC_RESAMPLE_H
#define SFC_RESAMPLE_H

#include <stdint.h>

/* numpy's np.round(size * scale) as an int (half to even), at least 1. */
int sfc_rescale_size(int size, double scale);

/* Bicubic resize of a uint8 (H, W, C) image to (OH, OW, C), as PIL's
 * Image.resize((OW, OH), Image.BICUBIC). Allocates its own scratch. */
void sfc_resize_bicubic_u8(uint8_t *out, int OH, int OW, const uint8_t *in,
                           int H, int W, int C);

/* Nearest resize of a uint8 (H, W, C) image, as PIL's Image.resize with
 * Image.NEAREST: source index floor(in/out * 0.5 + dst * in/out), the
 * sum accumulated in double one pixel at a time as Pillow does. */
void sfc_resize_nearest_u8(uint8_t *out, int OH, int OW, const uint8_t *in,
                           int H, int W, int C);

#endif
