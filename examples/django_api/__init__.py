"""The Organizer API on Django and Django REST framework, protected by apiguard.django."""
