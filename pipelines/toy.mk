# pipelines/toy.mk: the embedded default. Generates the long-tailed toy
# dataset and runs the pipeline on it, for SFC and for the plain-CAM
# baseline, as far as the stages exist.
#
# Options (every tool parameter is passed explicitly; `make -n demo` shows
# the exact commands):
#   TOY_RUN    ?= runs/toy   run folder: data/, sfc.db, per-method folders
#   TOY_SEED   ?= 0          seed of the data and of every stage
#   TOY_TRAIN  ?= 3000       training images     TOY_VAL ?= 300
#   TOY_SIZE   ?= 96         image side (pixels) TOY_CLASSES ?= 8
#   TOY_EPOCHS ?= 12         TOY_BATCH ?= 16     TOY_DRAWS ?= 4
# Stage programs (swap one for any program that honours the same files):
#   TOYGEN INGEST SAMPLE
# Targets: demo  toy-data  toy-clean
# Stamps (.done files) track completed stages; the db records what ran.

TOY_RUN     ?= runs/toy
TOY_SEED    ?= 0
TOY_TRAIN   ?= 3000
TOY_VAL     ?= 300
TOY_SIZE    ?= 96
TOY_CLASSES ?= 8
TOY_EPOCHS  ?= 12
TOY_BATCH   ?= 16
TOY_DRAWS   ?= 4

TOYGEN ?= $(BINDIR)/sfc-toygen
INGEST ?= $(BINDIR)/sfc-ingest
SAMPLE ?= $(BINDIR)/sfc-sample

TOY_DB := $(TOY_RUN)/sfc.db

.PHONY: demo toy-data toy-clean

demo: $(TOY_RUN)/sample.done
	@echo
	@echo "class statistics and DC weights (sqlite3 $(TOY_DB)):"
	@sqlite3 -column -header $(TOY_DB) "SELECT c.name AS class, \
	    s.n_images AS N_c, printf('%.4f', s.dc) AS DC, s.grp AS grp \
	    FROM class_stats s JOIN classes c ON c.id = s.class \
	    WHERE s.run = (SELECT max(id) FROM runs WHERE tool = 'sfc-sample' \
	    AND status = 'ok') ORDER BY s.n_images DESC"

toy-data: $(TOY_RUN)/data.done

$(TOY_RUN)/data.done: | $(TOYGEN)
	@mkdir -p $(TOY_RUN)
	$(TOYGEN) --out $(TOY_RUN)/data --size $(TOY_SIZE) \
	    --train $(TOY_TRAIN) --val $(TOY_VAL) --classes $(TOY_CLASSES) \
	    --seed $(TOY_SEED) -q > $(TOY_RUN)/data.classes.txt
	@touch $@

$(TOY_RUN)/ingest.done: $(TOY_RUN)/data.done | $(INGEST)
	$(INGEST) --db $(TOY_DB) -q $(TOY_RUN)/data > $(TOY_RUN)/ingest.txt
	@touch $@

$(TOY_RUN)/sample.done: $(TOY_RUN)/ingest.done | $(SAMPLE)
	$(SAMPLE) --db $(TOY_DB) --split train --epochs $(TOY_EPOCHS) \
	    --batch $(TOY_BATCH) --draws $(TOY_DRAWS) --crop $(TOY_SIZE) \
	    --aug sfc --seed $(TOY_SEED) -q > $(TOY_RUN)/sample.txt
	@touch $@

toy-clean:
	rm -rf $(TOY_RUN)
