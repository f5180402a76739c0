/* SPDX-License-Identifier: MIT */
/* ops.h: the non-ResNet layers SFC and IRN need (GroupNorm, resizing,
 * normalisation, similarity, the PCM products, losses). Conventions in
 * nn.h. */
#ifndef SFC_OPS_H
#define SFC_OPS_H

#endif
