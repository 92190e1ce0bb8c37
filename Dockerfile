# Gradient Flow Lab: the dashboard as a container.
#   docker build -t gradient-flow-lab .
#   docker run -p 8501:8501 -e GFL_MAX_CONCURRENT_RUNS=2 gradient-flow-lab
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    NUMBA_CACHE_DIR=/tmp/numba-cache \
    OMP_NUM_THREADS=1

WORKDIR /app

# The CPU build of torch (the default PyPI wheel is the multi-GB CUDA one),
# then everything else; torch==2.13.0 is already satisfied by then.
COPY requirements.txt .
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
 && pip install -r requirements.txt

COPY . .
RUN useradd --create-home --uid 10001 lab && chown -R lab:lab /app
USER lab
# Compile the statistics kernels once, into a cache the app user owns: every process loads
# the same compiled code (python -m core.measure.warm_up; importing them never compiles).
RUN python -m core.measure.warm_up

EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4).read().strip()==b'ok' else 1)"

CMD ["streamlit", "run", "app.py", "--server.port=8501", "--server.address=0.0.0.0"]
