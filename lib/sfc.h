/* SPDX-License-Identifier: MIT */
/* sfc.h: umbrella include for tools: the version and the core modules. */
#ifndef SFC_H
#define SFC_H

#define SFC_VERSION "0.1.0"

#include "atomic.h"
#include "cli.h"
#include "err.h"
#include "progress.h"
#include "rng.h"
#include "tensor.h"
#include "util.h"

#endif
