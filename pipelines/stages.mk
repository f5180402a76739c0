# pipelines/stages.mk: what every pipeline fragment shares (included by
# toy.mk and voc.mk, and by the top Makefile's pipelines/*.mk; the guard
# makes a second inclusion a no-op).
#
# Stage programs (swap one for any program that honours the same files,
# e.g. `make voc-pseudolabels CRF=./my-crf`):
#   TOYGEN INGEST SAMPLE TRAINSTEP CAM CRF IRN MIOU SEGTRAIN REPORT
#                                        default $(BINDIR)/sfc-*
#   BINDIR ?= bin
# the source tree (scripts/), wherever make runs
SFC_TOP := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))..)
#
# How a stage is tracked (the db is never a Make target; stamps are):
#   <stage>.sig    the stage's program and flags (see sfc_sig_rule)
#   <stage>.start  its inputs changed (or it never ran): what an earlier run
#                  of the stage left is removed, because the tools skip
#                  outputs that exist and resume from checkpoints, which is
#                  right after a kill and wrong after a change upstream
#   <dir>/.done-I-of-N   shard I of N finished (`--shard I/N`), so `make -j`
#                  runs the shards side by side; a killed shard reruns and
#                  skips the images it finished
#   <stage>.done   every shard finished
#
# Many machines (README "Many machines"): SUBMIT ?= (empty) is the launcher
# each shard's command goes through, e.g. `make -j 64 voc-pseudolabels
# SUBMIT=srun SHARDS=64` (or SUBMIT='srun -p cpu -c 4'); the stamps make a
# killed or failed shard rerun alone. A shard then never opens the run db:
# SQLite's locks, WAL's shared memory above all, do not hold between
# machines on a network file system. It reads <dir>/.db-snapshot (written
# here before it starts, never replaced, opened immutable) and writes its
# rows to <dir>/.rows-I-of-N.db, a db of its own (rollback journal, one
# writer; lib/db.h rows mode); <stage>.done merges those files into the
# run db here, in one transaction (sfc-dbmerge; a run merged before is not
# added again). A killed shard's half-written file is removed when the
# shard reruns, before it starts, so only finished shards' rows are
# merged, each once. Outputs are the same bytes as without SUBMIT.
ifndef SFC_STAGES_MK
SFC_STAGES_MK := 1

# OpenMP threads wait passively: spinning pools starve each other.
export OMP_WAIT_POLICY ?= passive

BINDIR ?= bin
# the source tree (scripts/), wherever make runs
SFC_TOP := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))..)
TOYGEN ?= $(BINDIR)/sfc-toygen
INGEST ?= $(BINDIR)/sfc-ingest
SAMPLE ?= $(BINDIR)/sfc-sample
TRAINSTEP ?= $(BINDIR)/sfc-trainstep
CAM ?= $(BINDIR)/sfc-cam
CRF ?= $(BINDIR)/sfc-crf
MIOU ?= $(BINDIR)/sfc-miou
IRN ?= $(BINDIR)/sfc-irn
SEGTRAIN ?= $(BINDIR)/sfc-segtrain
REPORT ?= $(BINDIR)/sfc-report
DBMERGE ?= $(BINDIR)/sfc-dbmerge
SUBMIT ?=

# $(call sfc_shard_run,DB,DIR,TAG): the words before the command of the
# shard TAG (I-of-N) of a stage whose stamps are in DIR and whose run db
# is DB: nothing without SUBMIT; else the snapshot, a fresh rows file and
# the launcher, the command running with SFC_DB_ROWS and SFC_DB_SNAPSHOT
sfc_shard_run = $(if $(strip $(SUBMIT)),mkdir -p $(2) && $(DBMERGE) --db \
    $(1) --snapshot $(2)/.db-snapshot && rm -f $(2)/.rows-$(3).db && \
    $(SUBMIT) env SFC_DB_ROWS=$(2)/.rows-$(3).db \
    SFC_DB_SNAPSHOT=$(2)/.db-snapshot)
# $(call sfc_shard_merge,DB,DIR): the recipe line of a stage's .done that
# merges its shards' rows files into DB (none when the shards ran here)
sfc_shard_merge = set -- $(2)/.rows-*.db; [ ! -e "$$1" ] || \
    $(DBMERGE) --db $(1) "$$@"

# $(call sfc_start,PATHS): the recipe of a start stamp: remove PATHS (what
# an earlier run of the stage wrote), then create the stamp.
define sfc_start
rm -rf $(1)
@mkdir -p $(@D) && touch $@
endef

sfc_comma := ,
sfc_empty :=
sfc_space := $(sfc_empty) $(sfc_empty)
# $(call sfc_join,WORDS): the words joined by commas
sfc_join = $(subst $(sfc_space),$(sfc_comma),$(strip $(1)))

# Signatures: <stage>.sig holds the stage's program and every flag; it is
# rewritten only when they change, and the stage depends on it, so a
# changed parameter or a swapped program reruns the stage (and what follows)
# whatever the files' times.
# $(eval $(call sfc_sig_rule,FILE,VAR)): the rule of FILE for variable VAR
define sfc_sig_rule
$(1): $$(call sfc_sig_stale,$(1),$$($(2)))
	@mkdir -p $$(@D) && printf '%s\n' $$(call sfc_shquote,$$($(2))) > $$@
endef
# sfc-force when FILE ($(1)) does not hold TEXT ($(2)), read at parse time
sfc_sig_stale = $(if $(findstring |$(strip $(2))|,|$(strip $(file <$(1)))|),,sfc-force)
sfc_shquote = '$(subst ','\'',$(1))'
# (defined without becoming the default goal of a file including this one)
sfc_goal := $(.DEFAULT_GOAL)
.PHONY: sfc-force
sfc-force:
.DEFAULT_GOAL := $(sfc_goal)

# $(call sfc_shard_stamps,DIR,N): the N shard stamps of a stage writing DIR
sfc_shard_stamps = $(foreach i,$(shell seq 0 $$(($(2) - 1))),$(1)/.done-$(i)-of-$(2))

# $(call sfc_show_classes,DB): the command that prints N_c, DC_c and the group of every class
# of the latest finished sfc-sample run
define sfc_show_classes
sqlite3 -column -header $(1) "SELECT c.name AS class, \
    s.n_images AS N_c, printf('%.4f', s.dc) AS DC, s.grp AS grp \
    FROM class_stats s JOIN classes c ON c.id = s.class \
    WHERE s.run = (SELECT max(id) FROM runs WHERE tool = 'sfc-sample' \
    AND status = 'ok') ORDER BY s.n_images DESC"
endef

# $(call sfc_show_miou,DB): the command that prints mIoU, head and tail means (%) of the latest
# scoring of every (stage, map)
define sfc_show_miou
sqlite3 -column -header $(1) "SELECT stage, map, \
    printf('%.1f', 100 * max(CASE name WHEN 'miou' THEN value END)) \
    AS mIoU, printf('%.1f', 100 * max(CASE name WHEN 'head' THEN value \
    END)) AS head, printf('%.1f', 100 * max(CASE name WHEN 'tail' \
    THEN value END)) AS tail FROM metrics WHERE class IS NULL AND \
    run IN (SELECT max(run) FROM metrics GROUP BY stage, map) \
    GROUP BY stage, map ORDER BY stage, map"
endef

endif
