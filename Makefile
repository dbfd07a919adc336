# Quick start (README): `make run` opens the dashboard on the shipped runs; `make test` runs the suite.
# Everything installs into .venv; torch comes from the pinned wheels that lie on this machine's disk.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PORT   ?= 8501

.PHONY: install run test test-fast lab notebooks figures bench lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

install: $(STAMP)

run: install
	$(PY) -m streamlit run dashboard/app.py --server.address 127.0.0.1 --server.port $(PORT) \
		--server.headless true --browser.gatherUsageStats false

test: install
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not slow and not e2e"

lab: install
	$(PY) -m jupyter lab notebooks/

# each notebook is notebooks/<name>.py (jupytext py:percent) paired with <name>.ipynb: after editing a .py
# outside JupyterLab, this brings its .ipynb up to date (the newer file of each pair wins)
notebooks: install
	$(PY) -m jupytext --sync notebooks/*.py

figures: install
	$(PY) -m bntt_core.notebook_runner --full --report reports/

bench: install
	$(PY) benchmarks/train_step.py

lint: install
	$(PY) -m ruff check bntt_core dashboard tests benchmarks notebooks experiments

clean:
	rm -rf $(VENV) reports .pytest_cache
