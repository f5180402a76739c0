# config.mk: the only file a user edits. Compiler, flags and the libraries
# found through pkg-config.

PREFIX   ?= /usr/local
CC       ?= cc
PKG_CONFIG ?= pkg-config

# Libraries; -I from pkg-config become -isystem so their headers do not
# trip our warning flags.
PKGS     = vips libpng sqlite3 openblas zlib yajl
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null | sed 's/-I/-isystem /g')
PKG_LIBS   := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)

CPPFLAGS = -D_XOPEN_SOURCE=700 -D_FILE_OFFSET_BITS=64 -Ilib
CFLAGS   = -std=c11 -O2 -g -fopenmp -Wall -Wextra -Werror -pedantic -Wshadow \
           -Wno-unknown-pragmas $(PKG_CFLAGS)
LDFLAGS  = -fopenmp
LDLIBS   = $(PKG_LIBS) -lm -lpthread

# MPI (optional): data-parallel training with mpirun/srun (lib/dist.h).
# Found through pkg-config (Open MPI's ompi-c, MPICH's mpich) or mpicc;
# `make MPI=0` builds without it (one process, as before). The choice is
# recorded in $(BUILD)/mpi.flag, so switching rebuilds lib/dist.o.
MPI_PKG  := $(shell for p in ompi-c mpich; do \
    $(PKG_CONFIG) --exists $$p 2>/dev/null && { echo $$p; break; }; done)
ifneq ($(MPI_PKG),)
MPI_FOUND  := 1
MPI_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(MPI_PKG) | sed 's/-I/-isystem /g')
MPI_LIBS   := $(shell $(PKG_CONFIG) --libs $(MPI_PKG))
else ifneq ($(shell command -v mpicc 2>/dev/null),)
MPI_FOUND  := 1
MPI_CFLAGS := $(shell mpicc --showme:compile 2>/dev/null | sed 's/-I/-isystem /g')
MPI_LIBS   := $(shell mpicc --showme:link 2>/dev/null)
else
MPI_FOUND  := 0
endif
MPI ?= $(MPI_FOUND)

# The sanitizer build (make SANITIZE=1 ...) adds these and builds in build-san/.
SAN_FLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer \
            -fno-sanitize-recover=undefined
