# pipelines/voc.mk: SFC on PASCAL VOC 2012 (+SBD): image-level labels in,
# pseudo labels out, with the mIoU of each stage on VOC train (1464).
#
#   make voc-pseudolabels VOC=/data/VOC2012 WEIGHTS=resnet50.safetensors
#   make -j 4 voc-pseudolabels VOC=... WEIGHTS=... SHARDS=4 RUN=try2
#   make -n voc-pseudolabels VOC=... WEIGHTS=...   every command, every flag
#
# Inputs:
#   VOC      root of VOC2012: JPEGImages/, SegmentationClass/,
#            ImageSets/Segmentation/<split>.txt, classes.txt (class names,
#            one a line; the 20 VOC classes when absent). With
#            SegmentationClassAug/ (SBD) the training list is
#            ImageSets/Segmentation/train_aug.txt, else train.txt.
#   WEIGHTS  ImageNet ResNet-50, torchvision key names (`make weights`);
#            none = random initialisation (tests, data without ImageNet)
# Options (`?=` defaults; every tool parameter is passed as a flag):
#   RUN ?= voc          everything goes to VOC_R ?= runs/$(RUN)/, the db
#                       is $(VOC_R)/sfc.db
#   SEED ?= 0           seed of sampling, initialisation and IRN training
#   SHARDS ?= nproc     per-image stages run as SHARDS processes
#                       (`--shard I/SHARDS`); `make -j N` runs N at once
#   VOC_TRAIN ?= train_aug or train (see VOC)   VOC_EVAL ?= train (1464)
#   VOC_PSEUDO ?= $(VOC_TRAIN)  list that gets pseudo labels
#   VOC_EPOCHS ?= 6  VOC_BATCH ?= 16  VOC_DRAWS ?= 4  VOC_CROP ?= 512
#   VOC_LR ?= 0.1    VOC_BLOCKS ?= 3,4,6,3  VOC_WIDTH ?= 64
#   VOC_SIDE ?= 128,128,256,256   VOC_FROZEN ?= 3 (0 without WEIGHTS)
#   VOC_SCALES ?= 1,0.5,1.5,2   CAM scales, each with its flip
#   CAM_DTYPE ?= f32    CAM storage (sfc-cam --cam-dtype): f32 or f16
#   VOC_CKPT_EVERY ?= 50  VOC_IRN_CKPT_EVERY ?= 10   steps between
#                       checkpoints (a killed training resumes from there)
#   VOC_CRF_ITERS ?= 12  VOC_IRN_EPOCHS ?= 3  VOC_IRN_BATCH ?= 32
#   VOC_IRN_RADIUS ?= 10 VOC_RW_RADIUS ?= 5   VOC_CANVAS ?= 512
#   segmentation (voc-seg; DeepLab-v2, lib/deeplab.h):
#   SEG_WEIGHTS ?= $(WEIGHTS)  ImageNet backbone (none = random); the
#                       paper: SEG_WEIGHTS=resnet101.safetensors
#                       VOC_SEG_BLOCKS=3,4,23,3
#   VOC_SEG_BLOCKS ?= 3,4,6,3   VOC_SEG_VAL ?= val (list scored)
#   VOC_SEG_ITERS ?= 20000  VOC_SEG_BATCH ?= 10  VOC_SEG_MICRO ?= 2
#   VOC_SEG_CROP ?= 321  VOC_SEG_LR ?= 2.5e-4 (head x10, biases x20)
#   VOC_SEG_MSC ?= 1,0.75,0.5  VOC_SEG_FLIP ?= 0  VOC_SEG_CRF ?= 0
#   VOC_SEG_CKPT_EVERY ?= 100
#   SUBMIT ?=           launcher of each shard, e.g. srun (stages.mk,
#                       README "Many machines")
#   VOC_QUIET ?=        -q: no progress from the long stages; else each
#                       prints a line every 10 s (SFC_PROGRESS=lines, as
#                       the shards share the terminal)
# Stage programs: INGEST SAMPLE TRAINSTEP CAM CRF IRN MIOU SEGTRAIN REPORT
# (stages.mk; e.g. CRF=./my-crf: that stage and what follows rerun)
# Targets:
#   voc-pseudolabels   the whole chain, then the class and mIoU tables
#   voc-files          the same without the tables (`make -q voc-files`)
#   voc-seg            then DeepLab-v2 on the pseudo labels, its
#                      predictions on VOC_SEG_VAL and their mIoU
#   voc-report         runs/$(RUN)/report.html (sfc-report: records,
#                      curves, bank, per-class IoU, examples; needs gnuplot)
#   voc-clean          remove runs/$(RUN)/ and nothing else
#   weights            ImageNet ResNet-50 as safetensors at WEIGHTS (default
#                      resnet50.safetensors): checks an existing file, or
#                      converts/copies WEIGHTS_FROM (a torchvision .pth or a
#                      safetensors), or downloads WEIGHTS_URL (default timm's
#                      resnet50.tv_in1k); WEIGHTS_SHA256 pins the file
# Files in runs/$(RUN)/: sfc.db; train/final.safetensors; cam/<id>.npz;
# ir_label/<id>.png; irn.safetensors; pseudo/<id>.png; cam-miou.txt,
# crf-miou.txt, pseudo-miou.txt; summary.txt; *.start, *.done and
# <dir>/.done-I-of-N stamps (stages.mk says what they mean); voc-seg adds
# seg.safetensors, seg/<id>.png, seg-miou.txt.
include $(dir $(lastword $(MAKEFILE_LIST)))stages.mk

RUN     ?= voc
SEED    ?= 0
ifeq ($(origin SHARDS),undefined)
SHARDS  := $(shell nproc)
endif
VOC_R   ?= runs/$(RUN)
VOC_DB  := $(VOC_R)/sfc.db
VOC_LISTS = $(VOC)/ImageSets/Segmentation
VOC_AUG  = $(wildcard $(VOC)/SegmentationClassAug)
VOC_TRAIN  ?= $(if $(VOC_AUG),train_aug,train)
VOC_EVAL   ?= train
VOC_PSEUDO ?= $(VOC_TRAIN)
VOC_MASKS   = $(if $(VOC_AUG),SegmentationClassAug,SegmentationClass)
VOC_NCLASS  = $(if $(wildcard $(VOC)/classes.txt),$(shell grep -c . \
    $(VOC)/classes.txt),20)
VOC_EPOCHS ?= 6
VOC_BATCH  ?= 16
VOC_DRAWS  ?= 4
VOC_CROP   ?= 512
VOC_LR     ?= 0.1
VOC_BLOCKS ?= 3,4,6,3
VOC_WIDTH  ?= 64
VOC_SIDE   ?= 128,128,256,256
VOC_FROZEN ?= $(if $(VOC_WEIGHTS),3,0)
VOC_SCALES ?= 1,0.5,1.5,2
VOC_CKPT_EVERY ?= 50
VOC_CRF_ITERS  ?= 12
VOC_IRN_EPOCHS ?= 3
VOC_IRN_BATCH  ?= 32
VOC_IRN_MICRO  ?= 4
VOC_IRN_RADIUS ?= 10
VOC_IRN_CKPT_EVERY ?= 10
VOC_RW_RADIUS  ?= 5
VOC_CANVAS     ?= 512
SEG_WEIGHTS      ?= $(WEIGHTS)
VOC_SEG_BLOCKS   ?= 3,4,6,3
VOC_SEG_VAL      ?= val
VOC_SEG_ITERS    ?= 20000
VOC_SEG_BATCH    ?= 10
VOC_SEG_MICRO    ?= 2
VOC_SEG_CROP     ?= 321
VOC_SEG_LR       ?= 2.5e-4
VOC_SEG_MSC      ?= 1,0.75,0.5
VOC_SEG_FLIP     ?= 0
VOC_SEG_CRF      ?= 0
VOC_SEG_CKPT_EVERY ?= 100
VOC_QUIET      ?=
# progress as lines in this pipeline's recipes (not in the rest of the
# project's, which include this file too)
$(VOC_R)/%: export SFC_PROGRESS ?= lines
# WEIGHTS=none: no file, random initialisation
VOC_WEIGHTS = $(filter-out none,$(WEIGHTS))
VOC_WFLAG   = $(if $(VOC_WEIGHTS),--weights $(VOC_WEIGHTS))

VOC_MIOU_CMD = $(MIOU) --db $(VOC_DB) --gt $(VOC)/SegmentationClass \
    --split $(VOC_EVAL) --count-split $(VOC_TRAIN) -q
VOC_FILES := $(addprefix $(VOC_R)/,cam-miou.txt crf-miou.txt \
    pseudo-miou.txt train/final.safetensors cam.done irlabel.done \
    irn.safetensors pseudo.done)

.PHONY: voc-pseudolabels voc-files voc-seg voc-report voc-clean weights

voc-pseudolabels: $(VOC_R)/summary.txt
voc-files: $(VOC_FILES)

$(VOC_R)/summary.txt: $(VOC_FILES)
	$(call sfc_summary,$(VOC_DB),mIoU on $(VOC_EVAL) (%):)

# Each stage's program and flags (VOC_QUIET, --shard and output
# redirections aside); the recipes run them, and <stage>.sig records them
# (stages.mk), so changing one reruns that stage and what follows.
VOC_INGEST_CMD = $(INGEST) --db $(VOC_DB) --images JPEGImages \
    --masks $(VOC_MASKS) --lists ImageSets/Segmentation --labels masks \
    --splits $(call sfc_join,$(sort $(VOC_TRAIN) $(VOC_EVAL))) $(VOC)
VOC_SAMPLE_CMD = $(call sfc_sample_cmd,VOC)
VOC_TRAIN_CMD = $(TRAINSTEP) --db $(VOC_DB) --out $(VOC_R)/train \
    $(VOC_WFLAG) --blocks $(VOC_BLOCKS) --width $(VOC_WIDTH) \
    --side $(VOC_SIDE) --frozen $(VOC_FROZEN) --lr $(VOC_LR) \
    --head-lr-mult 10 --wd 0.0001 --momentum 0.0001 --power 0.9 --clip 1 \
    --pdw-warmup 0 --ckpt-every $(VOC_CKPT_EVERY) --seed $(SEED)
VOC_CAM_CMD = $(CAM) --db $(VOC_DB) --ckpt $(VOC_R)/train/final.safetensors \
    --out $(VOC_R)/cam --split $(VOC_TRAIN) --scales $(VOC_SCALES) \
    --compress 1 --cam-dtype $(CAM_DTYPE)
VOC_CRF_CMD = $(call sfc_crf_cmd,VOC,ir_label,sfc,0.7)
VOC_IRN_CMD = $(call sfc_irn_cmd,VOC)
VOC_RW_CMD = $(call sfc_rw_cmd,VOC,$(VOC_PSEUDO))
VOC_NCLASS1 = $(shell echo $$(($(VOC_NCLASS) + 1)))

# (make -f pipelines/voc.mk alone: the pipeline is the default goal)
ifeq ($(.DEFAULT_GOAL),)
.DEFAULT_GOAL := voc-pseudolabels
endif
# the inputs are checked when a voc target is asked for (this file is
# read by every make in the project)
VOC_CHECK := $(if $(MAKECMDGOALS),$(filter-out voc-clean,$(filter voc-%,\
    $(MAKECMDGOALS))),$(filter voc-pseudolabels,$(.DEFAULT_GOAL)))
ifneq ($(VOC_CHECK),)
ifeq ($(VOC),)
$(error set VOC=/path/to/VOC2012 (JPEGImages/, SegmentationClass/, ImageSets/Segmentation/))
endif
ifeq ($(WEIGHTS),)
$(error set WEIGHTS=resnet50.safetensors (see `make weights`) or WEIGHTS=none)
endif
ifeq ($(wildcard $(VOC_LISTS)/$(VOC_TRAIN).txt),)
$(error no training list '$(VOC_LISTS)/$(VOC_TRAIN).txt')
endif
ifneq ($(VOC_WEIGHTS),)
ifeq ($(wildcard $(VOC_WEIGHTS)),)
$(error no weights file '$(VOC_WEIGHTS)' (see `make weights`))
endif
endif
endif

$(foreach p,ingest:INGEST sample:SAMPLE train:TRAIN cam:CAM crf:CRF irn:IRN \
    rw:RW miou:MIOU,$(eval $(call sfc_sig_rule,$(VOC_R)/$(firstword \
    $(subst :, ,$(p))).sig,VOC_$(lastword $(subst :, ,$(p)))_CMD)))

# the dataset: classes, images, the two lists, labels, class counts
$(VOC_R)/ingest.done: $(VOC_R)/ingest.sig $(VOC_LISTS)/$(VOC_TRAIN).txt \
    $(VOC_LISTS)/$(VOC_EVAL).txt $(INGEST)
	$(VOC_INGEST_CMD) $(VOC_QUIET) > $(VOC_R)/ingest.txt
	@touch $@

# class statistics, DC weights, the whole schedule with the bank draws
$(VOC_R)/sample.done: $(VOC_R)/sample.sig $(VOC_R)/ingest.done $(SAMPLE)
	$(VOC_SAMPLE_CMD) $(VOC_QUIET) > $(VOC_R)/sample.txt
	@touch $@

# the classifier on the schedule sample.txt names (resumes from
# train/ckpt.safetensors after a kill)
$(VOC_R)/train.start: $(VOC_R)/train.sig $(VOC_R)/sample.done \
    $(VOC_WEIGHTS) $(TRAINSTEP)
	$(call sfc_start,$(VOC_R)/train)

$(VOC_R)/train/final.safetensors: $(VOC_R)/train.start
	$(VOC_TRAIN_CMD) \
	    --schedule $$(awk '$$1 == "run" { print $$2 }' $(VOC_R)/sample.txt) \
	    $(VOC_QUIET) > /dev/null

# CAMs (M_W, M_P, CAM) of the training list, SHARDS processes
$(eval $(call sfc_shard_stage,$(VOC_DB),$(VOC_R)/cam.start,\
    $(VOC_R)/cam.done,$(VOC_R)/cam,\
    $(VOC_R)/cam.sig $(VOC_R)/train/final.safetensors $(CAM),\
    $$(VOC_CAM_CMD),$$(VOC_QUIET) > /dev/null))

$(VOC_R)/cam-miou.txt: $(VOC_R)/miou.sig $(VOC_R)/cam.done $(MIOU)
	$(VOC_MIOU_CMD) --cams $(VOC_R)/cam --map all --stage cam > $@.tmp
	$(VOC_MIOU_CMD) --cams $(VOC_R)/cam --map cam_c --stage cam >> $@.tmp
	mv $@.tmp $@

# IR labels: S = M_W + 0.7 M_P, SFC's two CRF maps (sfc-reference 5)
$(eval $(call sfc_shard_stage,$(VOC_DB),$(VOC_R)/irlabel.start,\
    $(VOC_R)/irlabel.done,$(VOC_R)/ir_label,\
    $(VOC_R)/crf.sig $(VOC_R)/cam.done $(CRF),$$(VOC_CRF_CMD),$$(VOC_QUIET)))

$(VOC_R)/crf-miou.txt: $(VOC_R)/miou.sig $(VOC_R)/irlabel.done $(MIOU)
	$(VOC_MIOU_CMD) --pred $(VOC_R)/ir_label --stage crf > $@.tmp
	mv $@.tmp $@

# IRN's edge branch on the ImageNet backbone (resumes after a kill from
# irn.safetensors.ckpt)
$(VOC_R)/irn.start: $(VOC_R)/irn.sig $(VOC_R)/irlabel.done $(VOC_WEIGHTS) \
    $(IRN)
	$(call sfc_start,$(VOC_R)/irn.safetensors $(VOC_R)/irn.safetensors.ckpt)

$(VOC_R)/irn.safetensors: $(VOC_R)/irn.start
	$(VOC_IRN_CMD) $(VOC_QUIET)

# pseudo labels: SFC's two random-walk passes over S = M_W + 0.3 M_P
$(eval $(call sfc_shard_stage,$(VOC_DB),$(VOC_R)/pseudo.start,\
    $(VOC_R)/pseudo.done,$(VOC_R)/pseudo,\
    $(VOC_R)/rw.sig $(VOC_R)/irn.safetensors $(VOC_R)/cam.done $(IRN),\
    $$(VOC_RW_CMD),$$(VOC_QUIET)))

$(VOC_R)/pseudo-miou.txt: $(VOC_R)/miou.sig $(VOC_R)/pseudo.done $(MIOU)
	$(VOC_MIOU_CMD) --pred $(VOC_R)/pseudo --stage pseudo > $@.tmp
	mv $@.tmp $@

# voc-seg: DeepLab-v2 trained on the pseudo labels of $(VOC_PSEUDO) (the
# db's image paths, pseudo/<id>.png), its predictions on $(VOC_SEG_VAL)
# in SHARDS processes, and their mIoU against the masks
VOC_SEG_WEIGHTS = $(filter-out none,$(SEG_WEIGHTS))
VOC_SEG_FILES := $(addprefix $(VOC_R)/,seg.safetensors seg.done seg-miou.txt)

voc-seg: $(VOC_R)/seg-miou.txt
	@cat $<

VOC_SEG_SPLIT   = $(VOC_PSEUDO)
VOC_SEG_IDS     = --images $(VOC)/JPEGImages --ext .jpg \
    --list $(VOC_LISTS)/$(VOC_SEG_VAL).txt
VOC_SEG_VALDEP  = $(VOC_LISTS)/$(VOC_SEG_VAL).txt
VOC_SEG_GT      = $(VOC)/SegmentationClass
VOC_SEG_MIOU_IDS = --list $(VOC_LISTS)/$(VOC_SEG_VAL).txt
$(eval $(call sfc_seg_rules,VOC))

# the page is rewritten every time, from what the db and folders hold now
voc-report: voc-files $(REPORT)
	$(REPORT) -q -o $(VOC_R)/report.html $(VOC_R)

voc-clean:
	rm -rf $(VOC_R)

weights:
	@sh $(SFC_TOP)/scripts/weights.sh $(or $(WEIGHTS),resnet50.safetensors) \
	    "$(WEIGHTS_FROM)" "$(WEIGHTS_URL)" "$(WEIGHTS_SHA256)"
