"""The local web studio: FastAPI app, REST API and page (`vbg web`, live mode's control page)."""
