# Rules shared by the language-model experiments (ablation/, hebrew/): the pipeline stages as
# file targets, one training run per arm and seed, its evaluation, and the report.
# The including Makefile sets CORPUS (a JSONL file of {"text", "lang"} documents) and may set
# the variables below before including this file.
EXP     := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
ROOT    := $(abspath $(EXP)/../..)
# PyPI's torch 2.x build where there is one: 3x (ILT) to 10x (bytes-lm) faster on a CPU.
BIN     ?= $(if $(wildcard $(ROOT)/build-torch2/ilt-train),$(ROOT)/build-torch2,$(ROOT)/build)
OUT     ?= out
STEPS   ?= 2000
SEEDS   ?= 1 2
BATCH   ?= 16
SEQ     ?= 64
LR      ?= 3e-3
WARMUP  ?= 100
EVAL    ?= 250
LOG     ?= 50
EVAL_BATCHES ?= 16
THREADS ?= 1
PY      ?= python3
PLOT_PY ?= /usr/bin/python3
RUNS    := $(foreach a,$(ARMS),$(foreach s,$(SEEDS),$(a)-s$(s)))

.PHONY: all report smoke clean
.DELETE_ON_ERROR:
.SECONDARY:
all: $(OUT)/results.md

# Stages: words, images, then packed train/validation examples (5% of documents held out by
# a hash of their text, the same for every arm).
$(OUT)/data/words.shard: $(CORPUS)
	mkdir -p $(OUT)/data
	$(BIN)/ilt-segment $< --tag-field lang -o $@ 2> $(OUT)/data/segment.log
$(OUT)/data/images.shard: $(OUT)/data/words.shard
	$(BIN)/ilt-render $< -o $@ --threads 2 2> $(OUT)/data/render.log
$(OUT)/data/lm.train.examples: $(OUT)/data/words.shard $(OUT)/data/images.shard
	$(BIN)/ilt-pack $(OUT)/data/words.shard --images $(OUT)/data/images.shard -o $(OUT)/data/lm \
	  --max-seq-length $(SEQ) --validation-fraction 0.05 --seed 1 2> $(OUT)/data/pack.log
$(OUT)/data/lm.validation.examples: $(OUT)/data/lm.train.examples

# One run per arm and seed: $(OUT)/runs/ARM-sSEED/run holds the checkpoint and metrics.jsonl.
# runs/RUN/flags holds the run's training flags and changes only when they do, so that a
# changed variable (STEPS, LR, ...) reruns the runs it concerns, and nothing else.
arm = $(firstword $(subst -s, ,$(1)))
seed = $(lastword $(subst -s, ,$(1)))
train_flags = --config arms/$(call arm,$(1)).json --seed $(call seed,$(1)) --max-steps $(STEPS) --batch-size $(BATCH) \
  --lr $(LR) --warmup $(WARMUP) --eval-every $(EVAL) --eval-batches $(EVAL_BATCHES) --log-every $(LOG)
.PHONY: FORCE
$(OUT)/runs/%/flags: FORCE
	@mkdir -p $(@D) && echo '$(call train_flags,$*)' > $@.new
	@if cmp -s $@.new $@; then rm $@.new; else mv $@.new $@; fi
.SECONDEXPANSION:
$(OUT)/runs/%/trained: $(OUT)/runs/%/flags arms/$$(call arm,$$*).json $(OUT)/data/lm.train.examples $(OUT)/data/lm.validation.examples
	rm -rf $(OUT)/runs/$*/run
	$(BIN)/ilt-train --train $(OUT)/data/lm.train.examples --validation $(OUT)/data/lm.validation.examples \
	  --output $(OUT)/runs/$*/run $(call train_flags,$*) --save-every $(STEPS) --threads $(THREADS) \
	  2> $(OUT)/runs/$*/train.log
	touch $@
# The whole validation split: bpb and next-word exact match, overall and by language.
$(OUT)/runs/%/eval.json: $(OUT)/runs/%/trained
	$(BIN)/ilt-eval --checkpoint $(OUT)/runs/$*/run --data $(OUT)/data/lm.validation.examples \
	  --threads $(THREADS) --json $@ > /dev/null

$(OUT)/results.md: $(foreach r,$(RUNS),$(OUT)/runs/$(r)/eval.json) $(EXP)/report.py
	$(PLOT_PY) $(EXP)/report.py $(OUT) --title "$(TITLE)" --command "make $(COMMAND_VARS)" $(RUNS)
report:
	rm -f $(OUT)/results.md && $(MAKE) $(OUT)/results.md

SMOKE_OUT ?= smoke
smoke:
	$(MAKE) OUT=$(SMOKE_OUT) STEPS=6 EVAL=3 LOG=3 EVAL_BATCHES=2 SEEDS=1 $(SMOKE_VARS) all
	test -s $(SMOKE_OUT)/results.md && test -s $(SMOKE_OUT)/curves.png
clean:
	rm -rf out smoke
