# The aeos service image (docker-compose.yml builds it).
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY aeos ./aeos
COPY semconv ./semconv
COPY storage ./storage
COPY otlp_receiver ./otlp_receiver
COPY query_api ./query_api
COPY dashboards_json ./dashboards_json
RUN pip install . && useradd --system --uid 10001 aeos
USER aeos
EXPOSE 4317 4318 8686
CMD ["aeos", "serve"]
