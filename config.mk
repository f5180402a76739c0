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

# The sanitizer build (make SANITIZE=1 ...) adds these and builds in build-san/.
SAN_FLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer \
            -fno-sanitize-recover=undefined
