"""The JSON API of API.md (/api/v1) and its OpenAPI document, generated with flask-smorest."""
