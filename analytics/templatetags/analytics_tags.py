from django import template

register = template.Library()


@register.filter
def is_manager(user) -> bool:
    """For the console header: show the Analytics link to those who may open it."""
    from tickets.roles import user_is_manager

    return user_is_manager(user)


@register.simple_tag(takes_context=True)
def console_alerts(context) -> dict | None:
    """For the console header: the AI alerts this user should see now (``analytics.alerts``), or None."""
    from analytics.alerts import alerts_for_user

    request = context.get("request")
    if request is None or not getattr(request, "user", None) or not request.user.is_authenticated:
        return None
    return alerts_for_user(user=request.user, session=request.session)
