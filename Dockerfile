# The bot's own image. Its base is a build argument: any image with Python >= 3.11, pip and venv.
#   docker build -t agentcoder .                                   # python:3.12-slim from a registry
#   docker build --build-arg BASE_IMAGE=agentcoder-sandbox:bookworm \
#                --build-arg PIP_OPTIONS="--no-index --find-links /src/build/wheels" \
#                --build-arg PACKAGE=agentcoder -t agentcoder .      # offline, from wheels built on the host
# The bot starts its sandboxes on a Docker daemon: mount its socket (-v /var/run/docker.sock:/var/run/docker.sock).
ARG BASE_IMAGE=python:3.12-slim
FROM ${BASE_IMAGE}
ARG PIP_OPTIONS=""
ARG PACKAGE=/src
# git is the bot's workspace tool; install it only when the base image lacks it.
RUN command -v git >/dev/null 2>&1 || (apt-get update && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*)
COPY . /src
RUN python3 -m venv /opt/agentcoder \
    && /opt/agentcoder/bin/pip install --no-cache-dir --disable-pip-version-check ${PIP_OPTIONS} "${PACKAGE}" \
    && rm -rf /src
ENV PATH=/opt/agentcoder/bin:$PATH \
    AGENTCODER_DATABASE_URL=sqlite:////data/agentcoder.db
VOLUME /data
EXPOSE 8000
ENTRYPOINT ["agentcoder"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
