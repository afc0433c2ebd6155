"""The OpenAI-compatible gateway: validate, Pick (classifier → selector), proxy, measure."""
