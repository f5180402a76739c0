# pipelines/coco.mk: SFC on MS COCO 2014: image-level labels from COCO's
# instance annotations in, pseudo labels for train2014 out, scored over 81
# classes (background + 80) against the masks rendered from the same
# annotations. SFC's COCO protocol: pseudo labels are CAM + CRF (the
# reference skips the random walk on COCO for its cost); IRN's random walk
# is an option (COCO_PSEUDO=irn).
#
#   make coco-pseudolabels COCO=/data/coco2014 WEIGHTS=resnet50.safetensors
#   make -j 4 coco-pseudolabels COCO=... WEIGHTS=... SHARDS=4 COCO_R=runs/c2
#   make -n coco-pseudolabels COCO=... WEIGHTS=...   every command, every flag
#
# Inputs:
#   COCO     root of COCO 2014 as distributed: train2014/, val2014/,
#            annotations/instances_train2014.json, instances_val2014.json
#   WEIGHTS  ImageNet ResNet-50, torchvision key names (`make weights`);
#            none = random initialisation
# Options (`?=` defaults; every tool parameter is passed as a flag):
#   COCO_R ?= runs/coco   everything goes there, the db is
#                      $(COCO_R)/sfc.db, the ground truth $(COCO_R)/gt/
#   SEED ?= 0   SHARDS ?= nproc (per-image stages, `--shard I/SHARDS`)
#   COCO_TRAIN ?= train2014   COCO_VAL ?= val2014   split names
#   COCO_EVAL ?= $(COCO_TRAIN)  split the pseudo labels are scored on
#   COCO_CROWD ?= class   COCO_OVERLAP ?= small   (sfc-coco --crowd,
#                      --overlap)
#   COCO_PSEUDO ?= crf  crf: CAM + CRF (SFC's COCO protocol); irn: IR
#                      labels, IRN's edge branch and the random walk
#   COCO_EPOCHS ?= 5  COCO_BATCH ?= 16  COCO_DRAWS ?= 4  COCO_CROP ?= 512
#   COCO_LR ?= 0.1   COCO_BLOCKS ?= 3,4,6,3  COCO_WIDTH ?= 64
#   COCO_SIDE ?= 128,128,256,256   COCO_FROZEN ?= 3 (0 without WEIGHTS)
#   COCO_SCALES ?= 1,0.5,1.5,2   COCO_CKPT_EVERY ?= 200
#   CAM_DTYPE ?= f32   CAM storage (sfc-cam --cam-dtype): f16 takes about
#                      half of f32's disk (README, MS COCO 2014)
#   COCO_CRF_ITERS ?= 12  COCO_P_WEIGHT ?= 0.7 (S = M_W + w M_P for CRF)
#   COCO_IRN_EPOCHS ?= 3  COCO_IRN_BATCH ?= 32  COCO_IRN_RADIUS ?= 10
#   COCO_RW_RADIUS ?= 5   COCO_CANVAS ?= 512
#   SUBMIT ?=          launcher of each shard, e.g. srun (stages.mk)
#   COCO_QUIET ?=      -q: no progress from the long stages
#   segmentation (coco-seg; DeepLab-v2, lib/deeplab.h; VOC's recipe with
#   the iterations scaled to COCO's ~8x more training images):
#   SEG_WEIGHTS ?= $(WEIGHTS)  ImageNet backbone (none = random); the
#                      paper: SEG_WEIGHTS=resnet101.safetensors
#                      COCO_SEG_BLOCKS=3,4,23,3
#   COCO_SEG_BLOCKS ?= 3,4,6,3   COCO_SEG_VAL ?= $(COCO_VAL) (split scored)
#   COCO_SEG_ITERS ?= 100000  COCO_SEG_BATCH ?= 10  COCO_SEG_MICRO ?= 2
#   COCO_SEG_CROP ?= 321  COCO_SEG_LR ?= 2.5e-4 (head x10, biases x20)
#   COCO_SEG_MSC ?= 1,0.75,0.5  COCO_SEG_FLIP ?= 0  COCO_SEG_CRF ?= 0
#   COCO_SEG_CKPT_EVERY ?= 500
# Stage programs: COCOINGEST (sfc-coco) SAMPLE TRAINSTEP CAM CRF IRN MIOU
# SEGTRAIN (stages.mk)
# Targets:
#   coco-pseudolabels  the whole chain, then the class and mIoU tables
#   coco-files         the same without the tables
#   coco-gt            only the ingest: db + gt/ masks of both splits
#   coco-seg           then DeepLab-v2 on the pseudo labels, its
#                      predictions on COCO_SEG_VAL and their mIoU
#   coco-clean         remove $(COCO_R) and nothing else
# Files in $(COCO_R): sfc.db; gt/ (VOC layout: SegmentationClass/,
# ImageSets/Segmentation/<split>.txt, classes.txt,
# <split>_unannotated.txt); train/final.safetensors; cam/<id>.npz;
# pseudo/<id>.png (crf) or ir_label/, irn.safetensors, pseudo/ (irn);
# cam-miou.txt, pseudo-miou.txt; summary.txt; stamps as in voc.mk;
# coco-seg adds seg.safetensors, seg/<id>.png, seg-miou.txt.
include $(dir $(lastword $(MAKEFILE_LIST)))stages.mk

COCOINGEST ?= $(BINDIR)/sfc-coco
SEED    ?= 0
ifeq ($(origin SHARDS),undefined)
SHARDS  := $(shell nproc)
endif
# its own folder variable: RUN names voc.mk's (both read every make)
COCO_R  ?= runs/coco
COCO_DB := $(COCO_R)/sfc.db
COCO_GT  = $(COCO_R)/gt
COCO_TRAIN ?= train2014
COCO_VAL   ?= val2014
COCO_EVAL  ?= $(COCO_TRAIN)
COCO_CROWD ?= class
COCO_OVERLAP ?= small
COCO_PSEUDO ?= crf
COCO_EPOCHS ?= 5
COCO_BATCH  ?= 16
COCO_DRAWS  ?= 4
COCO_CROP   ?= 512
COCO_LR     ?= 0.1
COCO_BLOCKS ?= 3,4,6,3
COCO_WIDTH  ?= 64
COCO_SIDE   ?= 128,128,256,256
COCO_FROZEN ?= $(if $(COCO_WEIGHTS),3,0)
COCO_SCALES ?= 1,0.5,1.5,2
COCO_CKPT_EVERY ?= 200
COCO_CRF_ITERS  ?= 12
COCO_P_WEIGHT   ?= 0.7
COCO_IRN_EPOCHS ?= 3
COCO_IRN_BATCH  ?= 32
COCO_IRN_MICRO  ?= 4
COCO_IRN_RADIUS ?= 10
COCO_IRN_CKPT_EVERY ?= 50
COCO_RW_RADIUS  ?= 5
COCO_CANVAS     ?= 512
COCO_QUIET      ?=
SEG_WEIGHTS       ?= $(WEIGHTS)
COCO_SEG_VAL      ?= $(COCO_VAL)
COCO_SEG_BLOCKS   ?= 3,4,6,3
COCO_SEG_ITERS    ?= 100000
COCO_SEG_BATCH    ?= 10
COCO_SEG_MICRO    ?= 2
COCO_SEG_CROP     ?= 321
COCO_SEG_LR       ?= 2.5e-4
COCO_SEG_MSC      ?= 1,0.75,0.5
COCO_SEG_FLIP     ?= 0
COCO_SEG_CRF      ?= 0
COCO_SEG_CKPT_EVERY ?= 500
$(COCO_R)/%: export SFC_PROGRESS ?= lines
COCO_WEIGHTS = $(filter-out none,$(WEIGHTS))
COCO_WFLAG   = $(if $(COCO_WEIGHTS),--weights $(COCO_WEIGHTS))
COCO_ANN     = $(COCO)/annotations/instances_$(1).json

ifneq ($(filter-out coco-clean,$(filter coco-%,$(MAKECMDGOALS))),)
ifeq ($(COCO),)
$(error set COCO=/path/to/coco2014 (train2014/, val2014/, annotations/instances_*2014.json))
endif
ifneq ($(filter-out coco-gt,$(filter coco-%,$(MAKECMDGOALS))),)
ifeq ($(WEIGHTS),)
$(error set WEIGHTS=resnet50.safetensors (see `make weights`) or WEIGHTS=none)
endif
endif
ifeq ($(wildcard $(call COCO_ANN,$(COCO_TRAIN))),)
$(error no annotation file '$(call COCO_ANN,$(COCO_TRAIN))')
endif
ifneq ($(filter coco-seg,$(MAKECMDGOALS)),)
ifeq ($(wildcard $(call COCO_ANN,$(COCO_SEG_VAL))),)
$(error coco-seg scores $(COCO_SEG_VAL): no annotation file '$(call COCO_ANN,$(COCO_SEG_VAL))')
endif
endif
ifeq ($(filter $(COCO_PSEUDO),crf irn),)
$(error COCO_PSEUDO must be crf or irn, not '$(COCO_PSEUDO)')
endif
endif

COCO_MIOU = $(MIOU) --db $(COCO_DB) --gt $(COCO_GT)/SegmentationClass \
    --split $(COCO_EVAL) --count-split $(COCO_TRAIN) -q
COCO_FILES := $(addprefix $(COCO_R)/,cam-miou.txt pseudo-miou.txt \
    train/final.safetensors cam.done pseudo.done)

.PHONY: coco-pseudolabels coco-files coco-gt coco-seg coco-clean

coco-pseudolabels: $(COCO_R)/summary.txt
coco-files: $(COCO_FILES)
coco-gt: $(COCO_R)/ingest.done

$(COCO_R)/summary.txt: $(COCO_FILES)
	$(call sfc_summary,$(COCO_DB),mIoU on $(COCO_EVAL) (%, 81 classes):)

# the dataset from COCO's own files: classes 1..80 in category-id order,
# images, labels, class counts, and the class masks of both splits
$(COCO_R)/ingest.done: $(call COCO_ANN,$(COCO_TRAIN)) \
    $(wildcard $(call COCO_ANN,$(COCO_VAL))) $(COCOINGEST)
	@mkdir -p $(COCO_R)
	$(COCOINGEST) --db $(COCO_DB) --images $(COCO)/$(COCO_TRAIN) \
	    --out $(COCO_GT) --split $(COCO_TRAIN) --crowd $(COCO_CROWD) \
	    --overlap $(COCO_OVERLAP) --margin 1 $(COCO_QUIET) \
	    $(call COCO_ANN,$(COCO_TRAIN)) > $(COCO_R)/ingest-$(COCO_TRAIN).txt
	$(if $(wildcard $(call COCO_ANN,$(COCO_VAL))),$(COCOINGEST) --db \
	    $(COCO_DB) --images $(COCO)/$(COCO_VAL) --out $(COCO_GT) --split \
	    $(COCO_VAL) --crowd $(COCO_CROWD) --overlap $(COCO_OVERLAP) \
	    --margin 1 $(COCO_QUIET) $(call COCO_ANN,$(COCO_VAL)) \
	    > $(COCO_R)/ingest-$(COCO_VAL).txt)
	@touch $@

# class statistics, DC weights from the data (80 classes), the schedule
$(COCO_R)/sample.done: $(COCO_R)/ingest.done $(SAMPLE)
	$(call sfc_sample_cmd,COCO) $(COCO_QUIET) > $(COCO_R)/sample.txt
	@touch $@

$(COCO_R)/train.start: $(COCO_R)/sample.done $(COCO_WEIGHTS) $(TRAINSTEP)
	$(call sfc_start,$(COCO_R)/train)

$(COCO_R)/train/final.safetensors: $(COCO_R)/train.start
	$(TRAINSTEP) --db $(COCO_DB) --out $(COCO_R)/train \
	    --schedule $$(awk '$$1 == "run" { print $$2 }' $(COCO_R)/sample.txt) \
	    $(COCO_WFLAG) --blocks $(COCO_BLOCKS) --width $(COCO_WIDTH) \
	    --side $(COCO_SIDE) --frozen $(COCO_FROZEN) --lr $(COCO_LR) \
	    --head-lr-mult 10 --wd 0.0001 --momentum 0.0001 --power 0.9 \
	    --clip 1 --pdw-warmup 0 --ckpt-every $(COCO_CKPT_EVERY) \
	    --seed $(SEED) $(COCO_QUIET) > /dev/null

# CAMs of the training split (keys = background + the image's classes)
COCO_CAM_CMD = $(CAM) --db $(COCO_DB) \
    --ckpt $(COCO_R)/train/final.safetensors --out $(COCO_R)/cam \
    --split $(COCO_TRAIN) --scales $(COCO_SCALES) --compress 1 --cam-c 0 \
    --cam-dtype $(CAM_DTYPE)
$(eval $(call sfc_shard_stage,$(COCO_DB),$(COCO_R)/cam.start,\
    $(COCO_R)/cam.done,$(COCO_R)/cam,\
    $(COCO_R)/train/final.safetensors $(CAM),\
    $$(COCO_CAM_CMD),$$(COCO_QUIET) > /dev/null))

$(COCO_R)/cam-miou.txt: $(COCO_R)/cam.done $(MIOU)
	$(COCO_MIOU) --cams $(COCO_R)/cam --map all --stage cam > $@.tmp
	mv $@.tmp $@

# pseudo labels: SFC's COCO protocol, keys[CRF(argmax S)] with S = M_W +
# w M_P; or the IRN option: IR labels, the edge branch, SFC's two
# random-walk passes (the CRF protocol does not depend on sfc-irn: a
# rebuild of it, which `make -n` lists, neither reruns nor shows there)
ifeq ($(COCO_PSEUDO),crf)
COCO_PSEUDO_DEPS = $(CRF)
COCO_PSEUDO_CMD = $(call sfc_crf_cmd,COCO,pseudo,cam-crf,$(COCO_P_WEIGHT))
else
COCO_PSEUDO_DEPS = $(COCO_R)/irn.safetensors $(IRN)
COCO_PSEUDO_CMD = $(call sfc_rw_cmd,COCO,$(COCO_TRAIN))
$(eval $(call sfc_shard_stage,$(COCO_DB),$(COCO_R)/irlabel.start,\
    $(COCO_R)/irlabel.done,$(COCO_R)/ir_label,$(COCO_R)/cam.done $(CRF),\
    $$(call sfc_crf_cmd,COCO,ir_label,sfc,0.7),$$(COCO_QUIET)))

$(COCO_R)/irn.start: $(COCO_R)/irlabel.done $(COCO_WEIGHTS) $(IRN)
	$(call sfc_start,$(COCO_R)/irn.safetensors $(COCO_R)/irn.safetensors.ckpt)

$(COCO_R)/irn.safetensors: $(COCO_R)/irn.start
	$(call sfc_irn_cmd,COCO) $(COCO_QUIET)
endif
$(eval $(call sfc_shard_stage,$(COCO_DB),$(COCO_R)/pseudo.start,\
    $(COCO_R)/pseudo.done,$(COCO_R)/pseudo,\
    $(COCO_R)/cam.done $(COCO_PSEUDO_DEPS),\
    $$(COCO_PSEUDO_CMD),$$(COCO_QUIET)))

$(COCO_R)/pseudo-miou.txt: $(COCO_R)/pseudo.done $(MIOU)
	$(COCO_MIOU) --pred $(COCO_R)/pseudo --stage pseudo > $@.tmp
	mv $@.tmp $@

# coco-seg: DeepLab-v2 (sfc-segtrain) on $(COCO_TRAIN) with pseudo/<id>.png
# as labels, its predictions on $(COCO_SEG_VAL) (the db's image paths) in
# SHARDS processes, their mIoU over 81 classes against gt/ (the paper's
# 46.8 val mIoU row); the rules are stages.mk's sfc_seg_rules, as voc-seg's
COCO_NCLASS1      = 81
COCO_SEG_WEIGHTS  = $(filter-out none,$(SEG_WEIGHTS))
COCO_SEG_SPLIT    = $(COCO_TRAIN)
COCO_SEG_IDS      = --split $(COCO_SEG_VAL)
COCO_SEG_VALDEP   = $(COCO_R)/ingest.done
COCO_SEG_GT       = $(COCO_GT)/SegmentationClass
COCO_SEG_MIOU_IDS = --split $(COCO_SEG_VAL)
$(eval $(call sfc_seg_rules,COCO))

coco-seg: $(COCO_R)/seg-miou.txt
	@cat $<

coco-clean:
	rm -rf $(COCO_R)
