from django import template

register = template.Library()


@register.filter
def is_manager(user) -> bool:
    """For the console header: show the Analytics link to those who may open it."""
    from tickets.roles import user_is_manager

    return user_is_manager(user)
