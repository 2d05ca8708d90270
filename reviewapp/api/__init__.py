"""The REST API (Django REST framework): serializers, permissions, filters, viewsets and routes."""
