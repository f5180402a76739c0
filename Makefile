# sfc: build, test, and the pipeline entry points.
#
#   make              lib/libsfc.a and every tool in bin/
#   make test         build and run every test; ends with "N passed, N failed"
#   make test-sanitize   the same under ASan + UBSan (build-san/)
#   make deps         install the Debian packages the project needs
#   make ref          regenerate tests/golden/ with the PyTorch oracles
#   make bench        benchmarks against their anchors (BENCHMARKS.md)
#
# Sources are found by wildcard: a new lib/x.c, tools/sfc-x.c or
# tests/test-x.c needs no edit here.

include config.mk

# Quiet build lines unless V=1.
ifeq ($(V),1)
Q :=
else
Q := @
endif

ifeq ($(SANITIZE),1)
BUILD   := build-san
BINDIR  := build-san/bin
LIBA    := build-san/libsfc.a
CFLAGS  += $(SAN_FLAGS)
LDFLAGS += $(SAN_FLAGS)
else ifeq ($(SANITIZE),)
BUILD   := build
BINDIR  := bin
LIBA    := lib/libsfc.a
else
$(error SANITIZE must be empty or 1, not '$(SANITIZE)')
endif

LIB_SRC   := $(wildcard lib/*.c)
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o)
TOOL_SRC  := $(wildcard tools/sfc-*.c)
TOOLS     := $(TOOL_SRC:tools/%.c=$(BINDIR)/%)
TEST_SRC  := $(wildcard tests/test-*.c)
TESTS     := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
DEPS      := $(LIB_OBJ:.o=.d) $(TOOL_SRC:%.c=$(BUILD)/%.d) $(TEST_SRC:%.c=$(BUILD)/%.d)
# Data files compiled into the library: db/schema.sql becomes the byte list
# $(BUILD)/gen/db/schema.sql.inc, used as #include "db/schema.sql.inc".
EMBED_INC := $(patsubst %,$(BUILD)/gen/%.inc,$(wildcard db/*.sql))
CPPFLAGS  += -I$(BUILD)/gen

.PHONY: all test check test-sanitize deps ref bench bench-crf bench-coco \
    bench-resnet bench-irn bench-sfc bench-seg bench-mpi clean install
.DELETE_ON_ERROR:
# keep the objects of tools and tests (chained pattern rules would delete
# them); listed, not a bare .SECONDARY:, which would make every pipeline
# file secondary, and a missing secondary file does not rerun what follows
.SECONDARY: $(TOOL_SRC:%.c=$(BUILD)/%.o) $(TEST_SRC:%.c=$(BUILD)/%.o)

all: $(LIBA) $(TOOLS)

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/gen/%.inc: %
	@mkdir -p $(@D)
	$(Q){ od -An -v -tx1 $< | sed 's/\([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	    echo 0x00; } >$@

$(LIB_OBJ): | $(EMBED_INC)

# MPI or not (config.mk): only lib/dist.c includes mpi.h; the tools and
# tests link MPI_LIBS; $(BUILD)/mpi.flag records the choice.
MPI_FLAGS_USED := $(if $(filter 1,$(MPI)),$(MPI_CFLAGS) $(MPI_LIBS))
ifeq ($(MPI),1)
$(BUILD)/lib/dist.o: CPPFLAGS += -DSFC_MPI
$(BUILD)/lib/dist.o: CFLAGS += $(MPI_CFLAGS)
LDLIBS += $(MPI_LIBS)
else ifneq ($(MPI),0)
$(error MPI must be 0 or 1, not '$(MPI)')
endif
# Written at parse time, and only when the choice changed (a FORCE rule
# would make `make -n` list a rebuild of everything).
MPI_FLAG_NOW := MPI=$(MPI) $(strip $(MPI_FLAGS_USED))
$(shell mkdir -p $(BUILD) && { [ "$$(cat $(BUILD)/mpi.flag 2>/dev/null)" = \
    '$(MPI_FLAG_NOW)' ] || echo '$(MPI_FLAG_NOW)' >$(BUILD)/mpi.flag; })
$(BUILD)/lib/dist.o: $(BUILD)/mpi.flag

$(LIBA): $(LIB_OBJ)
	@mkdir -p $(@D)
	$(Q)rm -f $@
	@$(if $(Q),echo "  AR      $@")
	$(Q)$(AR) rcs $@ $^

$(BINDIR)/sfc-%: $(BUILD)/tools/sfc-%.o $(LIBA)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(LIBA) $(LDLIBS)

$(BUILD)/tests/test-%: $(BUILD)/tests/test-%.o $(LIBA)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(LIBA) $(LDLIBS)

test check: all $(TESTS)
	@SFC_BIN=$(BINDIR) SFC_TESTBIN=$(BUILD)/tests SFC_MPI=$(MPI) \
	    sh tests/run.sh $(T)

test-sanitize:
	$(MAKE) SANITIZE=1 test

deps:
	@sh scripts/deps.sh

# Benchmarks (bench/run.sh says what each measures); long: run on purpose.
$(BUILD)/bench/bench-%: $(BUILD)/bench/bench-%.o $(LIBA)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(LIBA) $(LDLIBS)

# ResNet-50 engine vs PyTorch (bench/run.sh); also part of `make bench`.
bench: bench-resnet
bench-resnet: $(BUILD)/bench/bench-resnet
	@sh bench/run.sh $(BUILD)/bench/bench-resnet

# sfc-irn: sparse random walk vs IRN's dense one, edge branch vs PyTorch
bench-irn: $(BUILD)/bench/bench-irn bin/sfc-irn
	@/usr/bin/python3 bench/irn.py run $(BUILD)/bench/bench-irn bin/sfc-irn
bench: bench-irn

# sfc-trainstep and sfc-cam at SFC's shapes beside PyTorch
bench-sfc: all
	@/usr/bin/python3 bench/sfc.py run $(BINDIR)
bench: bench-sfc

# Dense CRF vs pydensecrf (bench/crf.sh); also part of `make bench`.
bench: bench-crf
bench-crf: $(BUILD)/bench/bench-crf $(BINDIR)/sfc-crf
	@sh bench/crf.sh $(BUILD)/bench/bench-crf $(BINDIR)/sfc-crf

# DeepLab-v2 ResNet-101 training and prediction vs PyTorch (bench/seg.sh);
# also part of `make bench`.
bench: bench-seg
bench-seg: $(BUILD)/bench/bench-seg
	@sh bench/seg.sh $(BUILD)/bench/bench-seg

# Data-parallel sfc-trainstep at 1, 2, 4 ranks and the gradient sum alone
# (bench/mpi.py; needs an MPI build and mpirun); also part of `make bench`.
bench: bench-mpi
bench-mpi: all $(BUILD)/bench/bench-mpi
	@/usr/bin/python3 bench/mpi.py run $(BINDIR) $(BUILD)/bench/bench-mpi

ref:
	@for s in tests/ref/ref_*.py; do \
	    echo "$$s"; /usr/bin/python3 "$$s" --golden || exit 1; done

clean:
	rm -rf build build-san bin lib/libsfc.a

install: all
	mkdir -p $(DESTDIR)$(PREFIX)/bin
	cp $(TOOLS) $(DESTDIR)$(PREFIX)/bin/

# COCO 2014 train-sized ingest (bench/coco.sh); also part of `make bench`.
bench: bench-coco
bench-coco: $(BINDIR)/sfc-coco
	@sh bench/coco.sh $(BINDIR)

-include $(DEPS)
-include pipelines/*.mk
