# pipelines/stages.mk: what every pipeline fragment shares (included by
# toy.mk, voc.mk and coco.mk, and by the top Makefile's pipelines/*.mk;
# the guard makes a second inclusion a no-op).
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
# storage of the CAM maps (sfc-cam --cam-dtype) in voc.mk and coco.mk:
# f32, or f16 (float16: about half the deflated size; every reader
# widens it, lib/camfile.h)
CAM_DTYPE ?= f32
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

# $(eval $(call sfc_shard_stage,DB,START,DONE,DIR,DEPS,CMD,TAIL)): the
# rules of a per-image stage writing DIR in SHARDS processes: the stamp
# START (after DEPS: what DIR holds is removed), DIR/.done-I-of-N (shard I
# runs `CMD --shard I/N TAIL`, through SUBMIT's launcher when set) and the
# stamp DONE (every shard; their rows files merged into DB). CMD and TAIL
# are expanded when the recipe runs (write their variables with $$).
# (The names are stripped: a call may break its lines anywhere.)
sfc_shard_stage = $(call sfc_shard_stage_,$(strip $(1)),$(strip $(2)),$(strip \
    $(3)),$(strip $(4)),$(5),$(6),$(7))
define sfc_shard_stage_
$(2): $(5)
	$$(call sfc_start,$(4))

$(4)/.done-%-of-$$(SHARDS): $(2)
	$$(call sfc_shard_run,$(1),$(4),$$*-of-$$(SHARDS)) $(6) --shard $$*/$$(SHARDS) $(7)
	@touch $$@

$(3): $$(call sfc_shard_stamps,$(4),$$(SHARDS))
	@$$(call sfc_shard_merge,$(1),$(4))
	@touch $$@
endef

# The commands voc.mk and coco.mk share, from pipeline P's variables
# (P_DB, P_R, P_TRAIN, ...; see each file's options):
# $(call sfc_sample_cmd,P): sfc-sample's schedule of P_TRAIN
sfc_sample_cmd = $(SAMPLE) --db $($(1)_DB) --split $($(1)_TRAIN) \
    --epochs $($(1)_EPOCHS) --batch $($(1)_BATCH) --draws $($(1)_DRAWS) \
    --crop $($(1)_CROP) --aug sfc --n-ibr -1 --seed $(SEED)
# $(call sfc_crf_cmd,P,OUT,RULE,PWEIGHT): sfc-crf of P's CAMs into
# P_R/OUT by RULE, S = M_W + PWEIGHT M_P
sfc_crf_cmd = $(CRF) --db $($(1)_DB) --cams $($(1)_R)/cam \
    --out $($(1)_R)/$(2) --split $($(1)_TRAIN) --rule $(3) --w-map cam_w \
    --w-weight 1 --p-weight $(4) --bg-scale 0.5 --iters $($(1)_CRF_ITERS) \
    --gt-prob 0.7 --gauss-sxy 3 --gauss-compat 3 --bilat-sxy 50 \
    --bilat-srgb 5 --bilat-compat 10 --filter lattice --threads 0
# $(call sfc_irn_cmd,P): IRN's edge branch on P_R/ir_label
sfc_irn_cmd = $(IRN) train --db $($(1)_DB) --split $($(1)_TRAIN) \
    --labels $($(1)_R)/ir_label $($(1)_WFLAG) --blocks $($(1)_BLOCKS) \
    --width $($(1)_WIDTH) --batch $($(1)_IRN_BATCH) \
    --micro $($(1)_IRN_MICRO) --epochs $($(1)_IRN_EPOCHS) \
    --crop $($(1)_CROP) --scale-lo 0.5 --scale-hi 1 --flip 1 \
    --classes $($(1)_NCLASS1) --radius $($(1)_IRN_RADIUS) --lr 0.1 \
    --weight-decay 0.0001 --momentum 0.0001 --power 0.9 \
    --checkpoint-every $($(1)_IRN_CKPT_EVERY) --seed $(SEED) \
    --out $($(1)_R)/irn.safetensors
# $(call sfc_rw_cmd,P,SPLIT): SFC's two random-walk passes, SPLIT's pseudo
# labels into P_R/pseudo
sfc_rw_cmd = $(IRN) infer --db $($(1)_DB) --split $(2) \
    --irn $($(1)_R)/irn.safetensors --cams $($(1)_R)/cam \
    --out $($(1)_R)/pseudo --rule sfc --canvas $($(1)_CANVAS) \
    --w-map cam_w --w-p 0.3 --power 1.3 --bg 0.25 --beta 10 \
    --exp-times 8 --radius $($(1)_RW_RADIUS)
# $(call sfc_summary,DB,TITLE): the recipe of a pipeline's summary.txt:
# the class table, then the mIoU table under TITLE
define sfc_summary
{ echo "class statistics and DC weights:"; \
$(call sfc_show_classes,$(1)); echo; \
echo "$(2)"; \
$(call sfc_show_miou,$(1)); } > $@.tmp && mv $@.tmp $@
@cat $@
endef

# $(eval $(call sfc_seg_rules,P)): the segmentation stage of pipeline P
# (VOC, COCO): DeepLab-v2 (sfc-segtrain train) on P's pseudo labels, its
# predictions in SHARDS processes, their mIoU. Rules for $(P_R)/seg.start,
# seg.safetensors, segpred.start, seg/.done-I-of-N, seg.done and
# seg-miou.txt, from these variables of P (all but P_R, P_DB, P_TRAIN,
# P_NCLASS1, P_QUIET are the pipeline's seg options):
#   P_R P_DB     run folder and db      P_TRAIN   split the class counts
#   P_NCLASS1    classes + background              (head/tail) come from
#   P_SEG_SPLIT  split trained on (labels $(P_R)/pseudo/<id>.png)
#   P_SEG_WEIGHTS  backbone file (empty: random)   P_SEG_BLOCKS
#   P_SEG_ITERS P_SEG_BATCH P_SEG_MICRO P_SEG_CROP P_SEG_LR P_SEG_MSC
#   P_SEG_FLIP P_SEG_CRF P_SEG_CKPT_EVERY
#   P_SEG_IDS    predict's image flags (--list/--split, --images, --ext)
#   P_SEG_VALDEP what those ids need (a list file, the ingest stamp)
#   P_SEG_GT     folder of the true masks   P_SEG_MIOU_IDS  sfc-miou's ids
define sfc_seg_rules
$$($(1)_R)/seg.start: $$($(1)_R)/pseudo.done $$($(1)_SEG_WEIGHTS) $$(SEGTRAIN)
	$$(call sfc_start,$$($(1)_R)/seg.safetensors $$($(1)_R)/seg.safetensors.ckpt)

$$($(1)_R)/seg.safetensors: $$($(1)_R)/seg.start
	$$(SEGTRAIN) train --db $$($(1)_DB) --split $$($(1)_SEG_SPLIT) \
	    --labels $$($(1)_R)/pseudo $$(if $$($(1)_SEG_WEIGHTS),--weights \
	    $$($(1)_SEG_WEIGHTS)) --blocks $$($(1)_SEG_BLOCKS) --width 64 \
	    --classes $$($(1)_NCLASS1) \
	    --iters $$($(1)_SEG_ITERS) --batch $$($(1)_SEG_BATCH) \
	    --micro $$($(1)_SEG_MICRO) --crop $$($(1)_SEG_CROP) \
	    --scales 0.5,0.75,1,1.25,1.5 --flip 1 --msc $$($(1)_SEG_MSC) \
	    --lr $$($(1)_SEG_LR) --head-lr-mult 10 --bias-lr-mult 20 \
	    --train-bn 0 --weight-decay 5e-4 --momentum 0.9 --power 0.9 \
	    --clip 0 --checkpoint-every $$($(1)_SEG_CKPT_EVERY) --seed $$(SEED) \
	    --out $$@ $$($(1)_QUIET)

$(call sfc_shard_stage,$$($(1)_DB),$$($(1)_R)/segpred.start,\
    $$($(1)_R)/seg.done,$$($(1)_R)/seg,$$($(1)_R)/seg.safetensors \
    $$($(1)_SEG_VALDEP) $$(SEGTRAIN),$$(call sfc_seg_predict_cmd,$(1)),\
    $$($(1)_QUIET))

$$($(1)_R)/seg-miou.txt: $$($(1)_R)/seg.done $$(MIOU)
	$$(MIOU) --db $$($(1)_DB) --gt $$($(1)_SEG_GT) \
	    --pred $$($(1)_R)/seg $$($(1)_SEG_MIOU_IDS) \
	    --count-split $$($(1)_TRAIN) --stage seg -q > $$@.tmp
	mv $$@.tmp $$@
endef

# $(call sfc_seg_predict_cmd,P): sfc_seg_rules' prediction command
sfc_seg_predict_cmd = $(SEGTRAIN) predict --db $($(1)_DB) $($(1)_SEG_IDS) \
    --model $($(1)_R)/seg.safetensors --out $($(1)_R)/seg \
    --msc $($(1)_SEG_MSC) --flip $($(1)_SEG_FLIP) --crf $($(1)_SEG_CRF) \
    --crf-iters 10 --crf-gauss-sxy 1 --crf-gauss-w 3 \
    --crf-bilat-sxy 67 --crf-bilat-srgb 3 --crf-bilat-w 4

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
