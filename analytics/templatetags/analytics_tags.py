from django import template

register = template.Library()


@register.filter
def is_manager(user) -> bool:
    """For the console header: show the Analytics link to those who may open it."""
    from analytics.views import is_manager as allowed

    return allowed(user)
