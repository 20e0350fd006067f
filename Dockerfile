# botsys: the API server, engine and runners in one image (Python 3.11, Node.js, a JDK).
# Build: docker compose build   (or: docker build -t botsys .)
# Bookworm is pinned on purpose: trixie dropped openjdk-17.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: a virtualenv holding only the dependencies declared in pyproject.toml ---------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml ./
# The app runs from /app (defaults.toml and the bundled bots are inside the package), so only the dependencies are
# installed into the venv, read from pyproject.toml: one list, no requirements.txt to drift.
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir -r requirements.txt

# --- launcher: botsys-launch, the one-exec bot wrapper (botsys/runners/launch.c) ---------
# Without it the runtime would fall back to setpriv + prlimit: one more exec per bot (~1 ms).
FROM ${PYTHON_IMAGE} AS launcher
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
COPY botsys/runners/launch.c /src/launch.c
# Static: no dynamic loader runs before each bot (~0.3 ms), and no libc version to match.
RUN gcc -O2 -static -o /src/botsys-launch /src/launch.c

# --- runtime ------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
# nodejs: node bots. openjdk-17-jdk-headless: java bots are compiled with javac first.
# util-linux: prlimit/setpriv, the native wrappers that apply resource limits to each bot.
# tini: PID 1 that forwards SIGTERM to botsys and reaps orphaned bot grandchildren.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        nodejs openjdk-17-jdk-headless util-linux tini \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin botsys \
    && useradd --system --no-create-home --shell /usr/sbin/nologin botsys-bot

COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# Owned by root and read-only for the botsys user: a bot cannot rewrite the server or other bots.
COPY pyproject.toml README.md ./
COPY botsys/ botsys/
COPY --from=launcher /src/botsys-launch botsys/runners/botsys-launch

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    API_GATEWAY_PORT=3000

# Not root: bots run as botsys (runner.bot_user applies to a root server; botsys-bot exists for
# images run with --user 0). The server is non-dumpable, so bots cannot read its environment.
USER 10001:10001
EXPOSE 3000

HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:3000/health', timeout=2).status != 200)"]

# Exec form: tini is PID 1 and passes SIGTERM straight to python (graceful drain, DESIGN §8).
# Binding 0.0.0.0 needs API keys (BOTSYS_API_KEYS) or --insecure; compose requires the keys.
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["python", "-m", "botsys", "serve", "--host", "0.0.0.0"]
