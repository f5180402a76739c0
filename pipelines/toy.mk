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
#   TOY_EPOCHS ?= 6          TOY_BATCH ?= 16     TOY_DRAWS ?= 4
#   TOY_BLOCKS ?= 1,1,1,1    TOY_WIDTH ?= 16     TOY_SIDE ?= 16,16,32,32
#                            the network: a small ResNet trained from scratch
#   TOY_IRN_IMAGES ?= 600    training images whose CAMs and IR labels train
#                            the IRN edge head (a prefix of the train list)
#   TOY_IRN_EPOCHS ?= 3      TOY_IRN_RADIUS ?= 10 (training path radius)
#   TOY_LR     ?= 0.1        TOY_PDW_WARMUP ?= 350 (L_PDW off for the first
#                            steps: from scratch it collapses the CAMs)
#   TOY_SCALES ?= 1,0.5,1.5,2   CAM inference scales
#   TOY_SEG_ITERS ?= 200   TOY_SEG_WIDTH ?= 8   TOY_SEG_LR ?= 0.1
#   TOY_SEG_BATCH ?= 10    TOY_SEG_MSC ?= 1,0.75,0.5   TOY_SEG_CLIP ?= 1
#                            segmentation: DeepLab-v2 (ResNet blocks
#                            TOY_BLOCKS, from scratch, so a larger lr with
#                            clipping than DeepLab's fine-tuning) trained
#                            on the random-walk pseudo labels of the IRN
#                            images, per method, and on their true masks
#                            (method gt: the fully supervised upper bound)
# Stage programs (swap one for any program that honours the same files):
#   TOYGEN INGEST SAMPLE TRAINSTEP CAM CRF IRN MIOU SEGTRAIN REPORT
# SUBMIT ?=   launcher of the per-image stages, e.g. srun (stages.mk)
# Targets: demo  toy-data  toy-report  toy-clean
# toy-report (and the end of demo) writes $(TOY_RUN)/report.html, one page
# with both methods side by side (sfc-report).
# Methods: sfc (SFC as the paper) and baseline (plain CAM classifier), each
# in $(TOY_RUN)/<method>/: final.safetensors, cam/, crf/, pseudo/,
# pseudo-train/ (pseudo labels of the IRN images), seg.safetensors, seg/
# (the segmentation network's val predictions) and the mIoU tables;
# $(TOY_RUN)/gt/ holds the network trained on the true masks. The metrics
# rows are in the db (stage cam / crf / pseudo / seg, map per method).
# Stamps track stages (<stage>.start: begun on current inputs; .done:
# finished; see stages.mk); the db records what ran.
# Tool variables, stamps and the summary queries: stages.mk.
include $(dir $(lastword $(MAKEFILE_LIST)))stages.mk

TOY_RUN     ?= runs/toy
TOY_SEED    ?= 0
TOY_TRAIN   ?= 3000
TOY_VAL     ?= 300
TOY_SIZE    ?= 96
TOY_CLASSES ?= 8
TOY_EPOCHS  ?= 6
TOY_BATCH   ?= 16
TOY_DRAWS   ?= 4
TOY_BLOCKS  ?= 1,1,1,1
TOY_WIDTH   ?= 16
TOY_SIDE    ?= 16,16,32,32
TOY_NET     := --blocks $(TOY_BLOCKS) --width $(TOY_WIDTH) --side $(TOY_SIDE) \
    --frozen 0
TOY_IRN_IMAGES ?= 600
TOY_IRN_EPOCHS ?= 3
TOY_IRN_RADIUS ?= 10
TOY_LR      ?= 0.1
TOY_PDW_WARMUP ?= 350
TOY_SCALES  ?= 1,0.5,1.5,2
TOY_METHODS := sfc baseline
TOY_FLAGS_sfc      := --pdw-warmup $(TOY_PDW_WARMUP)
TOY_FLAGS_baseline := --baseline
# the maps each method's later stages start from: SFC's M_W and M_P (with
# the reference's weights), the baseline's classifier CAM alone (it trains
# no PCM or prototype heads)
TOY_WMAP_sfc := cam_w
TOY_WMAP_baseline := cam_c
TOY_PW_CRF_sfc := 1
TOY_PW_CRF_baseline := 0
TOY_PW_IR_sfc := 0.7
TOY_PW_IR_baseline := 0
TOY_PW_RW_sfc := 0.3
TOY_PW_RW_baseline := 0
TOY_SEG_ITERS ?= 200
TOY_SEG_WIDTH ?= 8
TOY_SEG_LR    ?= 0.1
TOY_SEG_BATCH ?= 10
TOY_SEG_MSC   ?= 1,0.75,0.5
TOY_SEG_CLIP  ?= 1
TOY_SEG_METHODS := $(TOY_METHODS) gt
TOY_SEGLABELS_sfc := $(TOY_RUN)/sfc/pseudo-train
TOY_SEGLABELS_baseline := $(TOY_RUN)/baseline/pseudo-train
TOY_SEGLABELS_gt := $(TOY_RUN)/data/SegmentationClass

TOY_DB := $(TOY_RUN)/sfc.db
# SUBMIT (stages.mk): each per-image stage of a method (writing
# $(TOY_RUN)/<method>/$(1)) runs as one job through the launcher, and
# merges the rows it wrote into the db when it ends
TOY_SUBMIT = $(call sfc_shard_run,$(TOY_DB),$(TOY_RUN)/$*/$(1),0-of-1)
TOY_MERGE = $(call sfc_shard_merge,$(TOY_DB),$(TOY_RUN)/$*/$(1))

.PHONY: demo demo-files toy-data toy-report toy-clean

TOY_RESULTS := $(foreach m,$(TOY_METHODS),$(TOY_RUN)/$(m)/cam-miou.txt \
    $(TOY_RUN)/$(m)/crf-miou.txt $(TOY_RUN)/$(m)/pseudo-miou.txt \
    $(TOY_RUN)/$(m)/pseudo-train-miou.txt) \
    $(foreach m,$(TOY_SEG_METHODS),$(TOY_RUN)/$(m)/seg-miou.txt)
# every stage output named here, so none is an "intermediate" of the
# pattern chains: removing one reruns it and what follows it
TOY_STAGES := $(foreach m,$(TOY_METHODS),$(addprefix $(TOY_RUN)/$(m)/, \
    final.safetensors cam.done crf.done irlabel.done irn.safetensors \
    pseudo.done train.start cam.start crf.start irlabel.start irn.start \
    pseudo.start pseudo-train.start pseudo-train.done)) \
    $(foreach m,$(TOY_SEG_METHODS),$(addprefix $(TOY_RUN)/$(m)/, \
    seg.start seg.safetensors segpred.start seg.done))

demo-files: $(TOY_RESULTS) $(TOY_STAGES)

demo: demo-files $(REPORT)
	@echo
	@echo "class statistics and DC weights (sqlite3 $(TOY_DB)):"
	@$(call sfc_show_classes,$(TOY_DB))
	@echo
	@echo "mIoU on the val split (%), baseline vs SFC:"
	@$(call sfc_show_miou,$(TOY_DB))
	@echo
	@echo "segmentation: DeepLab-v2 trained on the IRN images' labels," \
	    "mIoU (%) of its val predictions (seg); pseudo_train: those" \
	    "labels' own mIoU; gt: trained on the true masks (upper bound):"
	@$(call toy_show_seg,$(TOY_DB))
	$(REPORT) -q -o $(TOY_RUN)/report.html $(TOY_RUN)
	@echo
	@echo "report: $(TOY_RUN)/report.html"

# the page is cheap (about a second): always rewritten, from what the db
# and the folders hold now
toy-report: demo-files $(REPORT)
	$(REPORT) -q -o $(TOY_RUN)/report.html $(TOY_RUN)

toy-data: $(TOY_RUN)/data.done

$(TOY_RUN)/data.done: $(TOYGEN)
	@mkdir -p $(TOY_RUN)
	$(TOYGEN) --out $(TOY_RUN)/data --size $(TOY_SIZE) \
	    --train $(TOY_TRAIN) --val $(TOY_VAL) --classes $(TOY_CLASSES) \
	    --seed $(TOY_SEED) -q > $(TOY_RUN)/data.classes.txt
	@touch $@

$(TOY_RUN)/ingest.done: $(TOY_RUN)/data.done $(INGEST)
	$(INGEST) --db $(TOY_DB) -q $(TOY_RUN)/data > $(TOY_RUN)/ingest.txt
	@touch $@

$(TOY_RUN)/sample.done: $(TOY_RUN)/ingest.done $(SAMPLE)
	$(SAMPLE) --db $(TOY_DB) --split train --epochs $(TOY_EPOCHS) \
	    --batch $(TOY_BATCH) --draws $(TOY_DRAWS) --crop $(TOY_SIZE) \
	    --aug sfc --seed $(TOY_SEED) -q > $(TOY_RUN)/sample.txt
	@touch $@

# training from scratch, then CAMs, CAM + CRF, and their scores; each
# <stage>.start removes what an earlier run of the stage left when its
# inputs changed (stages.mk), so tools that resume do not resume stale work
$(TOY_RUN)/%/train.start: $(TOY_RUN)/sample.done $(TRAINSTEP)
	$(call sfc_start,$(TOY_RUN)/$*/ckpt.safetensors $(TOY_RUN)/$*/final.safetensors)

$(TOY_RUN)/%/final.safetensors: $(TOY_RUN)/%/train.start
	$(TRAINSTEP) --db $(TOY_DB) --out $(TOY_RUN)/$* $(TOY_NET) \
	    --lr $(TOY_LR) --seed $(TOY_SEED) $(TOY_FLAGS_$*) -q

$(TOY_RUN)/%/cam.start: $(TOY_RUN)/%/final.safetensors $(CAM)
	$(call sfc_start,$(TOY_RUN)/$*/cam)

$(TOY_RUN)/%/cam.done: $(TOY_RUN)/%/cam.start
	$(call TOY_SUBMIT,cam) $(CAM) --db $(TOY_DB) --ckpt $(TOY_RUN)/$*/final.safetensors \
	    --out $(TOY_RUN)/$*/cam --split val \
	    --scales $(TOY_SCALES) -q > /dev/null
	@$(call TOY_MERGE,cam)
	@touch $@

$(TOY_RUN)/%/cam-miou.txt: $(TOY_RUN)/%/cam.done $(MIOU)
	$(MIOU) --db $(TOY_DB) --gt $(TOY_RUN)/data/SegmentationClass \
	    --cams $(TOY_RUN)/$*/cam --split val --count-split train \
	    --map all --stage cam-$* -q > $@.tmp
	$(MIOU) --db $(TOY_DB) --gt $(TOY_RUN)/data/SegmentationClass \
	    --cams $(TOY_RUN)/$*/cam --split val --count-split train \
	    --map cam_c --stage cam-$* -q >> $@.tmp && mv $@.tmp $@

$(TOY_RUN)/%/crf.start: $(TOY_RUN)/%/cam.done $(CRF)
	$(call sfc_start,$(TOY_RUN)/$*/crf)

$(TOY_RUN)/%/crf.done: $(TOY_RUN)/%/crf.start
	$(call TOY_SUBMIT,crf) $(CRF) --db $(TOY_DB) --cams $(TOY_RUN)/$*/cam \
	    --out $(TOY_RUN)/$*/crf \
	    --split val --rule cam-crf --w-map $(TOY_WMAP_$*) --w-weight 1 \
	    --p-weight $(TOY_PW_CRF_$*) -q
	@$(call TOY_MERGE,crf)
	@touch $@

$(TOY_RUN)/%/crf-miou.txt: $(TOY_RUN)/%/crf.done $(MIOU)
	$(MIOU) --db $(TOY_DB) --gt $(TOY_RUN)/data/SegmentationClass \
	    --pred $(TOY_RUN)/$*/crf --split val --count-split train \
	    --stage crf-$* -q > $@.tmp && mv $@.tmp $@

# IRN: CAMs and IR labels (SFC's rule) of a prefix of the train list
# train the edge head on the method's frozen backbone; the random walk
# turns the val CAMs into pseudo labels
$(TOY_RUN)/irn-list.txt: $(TOY_RUN)/ingest.done
	head -n $(TOY_IRN_IMAGES) $(TOY_RUN)/data/ImageSets/Segmentation/train.txt \
	    > $@.tmp && mv $@.tmp $@

$(TOY_RUN)/%/irlabel.start: $(TOY_RUN)/%/final.safetensors \
    $(TOY_RUN)/irn-list.txt $(CAM) $(CRF)
	$(call sfc_start,$(TOY_RUN)/$*/cam-train $(TOY_RUN)/$*/ir_label)

$(TOY_RUN)/%/irlabel.done: $(TOY_RUN)/%/irlabel.start
	$(call TOY_SUBMIT,cam-train) $(CAM) --db $(TOY_DB) \
	    --ckpt $(TOY_RUN)/$*/final.safetensors --out $(TOY_RUN)/$*/cam-train \
	    --list $(TOY_RUN)/irn-list.txt --scales 1 -q > /dev/null
	$(call TOY_SUBMIT,ir_label) $(CRF) --db $(TOY_DB) \
	    --cams $(TOY_RUN)/$*/cam-train \
	    --out $(TOY_RUN)/$*/ir_label --list $(TOY_RUN)/irn-list.txt \
	    --rule sfc --w-map $(TOY_WMAP_$*) --w-weight 1 \
	    --p-weight $(TOY_PW_IR_$*) -q
	@$(call TOY_MERGE,cam-train)
	@$(call TOY_MERGE,ir_label)
	@touch $@

$(TOY_RUN)/%/irn.start: $(TOY_RUN)/%/irlabel.done $(IRN)
	$(call sfc_start,$(TOY_RUN)/$*/irn.safetensors $(TOY_RUN)/$*/irn.safetensors.ckpt)

$(TOY_RUN)/%/irn.safetensors: $(TOY_RUN)/%/irn.start
	$(IRN) train --db $(TOY_DB) --list $(TOY_RUN)/irn-list.txt \
	    --images $(TOY_RUN)/data/JPEGImages --labels $(TOY_RUN)/$*/ir_label \
	    --weights $(TOY_RUN)/$*/final.safetensors --blocks $(TOY_BLOCKS) \
	    --width $(TOY_WIDTH) --batch 16 --micro 16 --epochs $(TOY_IRN_EPOCHS) \
	    --crop $(TOY_SIZE) --classes $$(($(TOY_CLASSES) + 1)) --radius $(TOY_IRN_RADIUS) \
	    --seed $(TOY_SEED) --out $@ -q

$(TOY_RUN)/%/pseudo.start: $(TOY_RUN)/%/irn.safetensors $(TOY_RUN)/%/cam.done $(IRN)
	$(call sfc_start,$(TOY_RUN)/$*/pseudo)

$(TOY_RUN)/%/pseudo.done: $(TOY_RUN)/%/pseudo.start
	$(call TOY_SUBMIT,pseudo) $(IRN) infer --db $(TOY_DB) --split val \
	    --irn $(TOY_RUN)/$*/irn.safetensors \
	    --cams $(TOY_RUN)/$*/cam --out $(TOY_RUN)/$*/pseudo \
	    --canvas $(TOY_SIZE) --rule sfc --w-map $(TOY_WMAP_$*) \
	    --w-p $(TOY_PW_RW_$*) -q
	@$(call TOY_MERGE,pseudo)
	@touch $@

$(TOY_RUN)/%/pseudo-miou.txt: $(TOY_RUN)/%/pseudo.done $(MIOU)
	$(MIOU) --db $(TOY_DB) --gt $(TOY_RUN)/data/SegmentationClass \
	    --pred $(TOY_RUN)/$*/pseudo --split val --count-split train \
	    --stage pseudo-$* -q > $@.tmp && mv $@.tmp $@

# segmentation: pseudo labels of the IRN images (from their single-scale
# train CAMs), DeepLab-v2 trained on them (or on the true masks: gt), its
# predictions on val, their scores. The train pseudo labels are not
# recorded as a run (their mIoU is): sfc-report shows the folder of the
# last recorded sfc-irn infer run as the val pseudo labels.
$(TOY_RUN)/%/pseudo-train.start: $(TOY_RUN)/%/irn.safetensors \
    $(TOY_RUN)/%/irlabel.done $(IRN)
	$(call sfc_start,$(TOY_RUN)/$*/pseudo-train)

$(TOY_RUN)/%/pseudo-train.done: $(TOY_RUN)/%/pseudo-train.start
	$(call TOY_SUBMIT,pseudo-train) $(IRN) infer --list $(TOY_RUN)/irn-list.txt \
	    --images $(TOY_RUN)/data/JPEGImages --ext .jpg \
	    --irn $(TOY_RUN)/$*/irn.safetensors --cams $(TOY_RUN)/$*/cam-train \
	    --out $(TOY_RUN)/$*/pseudo-train --canvas $(TOY_SIZE) --rule sfc \
	    --w-map $(TOY_WMAP_$*) --w-p $(TOY_PW_RW_$*) -q
	@touch $@

$(TOY_RUN)/%/pseudo-train-miou.txt: $(TOY_RUN)/%/pseudo-train.done $(MIOU)
	$(MIOU) --db $(TOY_DB) --gt $(TOY_RUN)/data/SegmentationClass \
	    --pred $(TOY_RUN)/$*/pseudo-train --list $(TOY_RUN)/irn-list.txt \
	    --count-split train --stage pseudo-train-$* -q > $@.tmp && mv $@.tmp $@

$(TOY_RUN)/%/seg.start: $(TOY_RUN)/%/pseudo-train.done $(SEGTRAIN)
	$(call sfc_start,$(TOY_RUN)/$*/seg.safetensors $(TOY_RUN)/$*/seg.safetensors.ckpt)

$(TOY_RUN)/gt/seg.start: $(TOY_RUN)/%/seg.start: $(TOY_RUN)/irn-list.txt \
    $(SEGTRAIN)
	$(call sfc_start,$(TOY_RUN)/$*/seg.safetensors $(TOY_RUN)/$*/seg.safetensors.ckpt)

$(TOY_RUN)/%/seg.safetensors: $(TOY_RUN)/%/seg.start
	$(SEGTRAIN) train --db $(TOY_DB) --list $(TOY_RUN)/irn-list.txt \
	    --labels $(TOY_SEGLABELS_$*) --classes $$(($(TOY_CLASSES) + 1)) \
	    --blocks $(TOY_BLOCKS) --width $(TOY_SEG_WIDTH) \
	    --iters $(TOY_SEG_ITERS) --batch $(TOY_SEG_BATCH) \
	    --micro $(TOY_SEG_BATCH) --crop $(TOY_SIZE) \
	    --scales 0.5,0.75,1,1.25,1.5 --flip 1 --msc $(TOY_SEG_MSC) \
	    --lr $(TOY_SEG_LR) --head-lr-mult 1 --bias-lr-mult 1 --train-bn 0 \
	    --weight-decay 5e-4 --momentum 0.9 --power 0.9 \
	    --clip $(TOY_SEG_CLIP) --seed $(TOY_SEED) --out $@ -q

$(TOY_RUN)/%/segpred.start: $(TOY_RUN)/%/seg.safetensors $(SEGTRAIN)
	$(call sfc_start,$(TOY_RUN)/$*/seg)

$(TOY_RUN)/%/seg.done: $(TOY_RUN)/%/segpred.start
	$(call TOY_SUBMIT,seg) $(SEGTRAIN) predict --db $(TOY_DB) --split val \
	    --model $(TOY_RUN)/$*/seg.safetensors --out $(TOY_RUN)/$*/seg \
	    --msc $(TOY_SEG_MSC) --flip 0 --crf 0 -q
	@$(call TOY_MERGE,seg)
	@touch $@

$(TOY_RUN)/%/seg-miou.txt: $(TOY_RUN)/%/seg.done $(MIOU)
	$(MIOU) --db $(TOY_DB) --gt $(TOY_RUN)/data/SegmentationClass \
	    --pred $(TOY_RUN)/$*/seg --split val --count-split train \
	    --stage seg-$* -q > $@.tmp && mv $@.tmp $@

# $(call toy_show_seg,DB): per method, the latest val mIoU of its
# segmentation network and of the pseudo labels it was trained on
define toy_show_seg
sqlite3 -column -header $(1) "SELECT substr(s.stage, 5) AS method, \
    printf('%.1f', 100 * s.value) AS seg, (SELECT printf('%.1f', \
    100 * p.value) FROM metrics p WHERE p.name = 'miou' AND p.class IS \
    NULL AND p.stage = 'pseudo-train-' || substr(s.stage, 5) ORDER BY \
    p.run DESC LIMIT 1) AS pseudo_train FROM metrics s WHERE s.name = \
    'miou' AND s.class IS NULL AND s.stage LIKE 'seg-%' AND s.run = \
    (SELECT max(run) FROM metrics WHERE stage = s.stage) ORDER BY \
    s.value DESC"
endef

toy-clean:
	rm -rf $(TOY_RUN)
