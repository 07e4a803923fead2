"""Deleting a user takes the plays lock first (plays have no database foreign key, see `Play`).

Django's collector deletes a user's plays before the user row, after sending `pre_delete`: locking the row
here makes a sync or import of that user finish first (its plays are then deleted with the rest), or wait
and find the user gone, so no play outlives its user.
"""

from typing import Any

from django.db.models.signals import pre_delete
from django.dispatch import receiver

from earworm.accounts.models import User
from earworm.history.services.plays import plays_user_lock


@receiver(pre_delete, sender=User, dispatch_uid="history_user_pre_delete_lock")
def user_pre_delete_lock(sender: type[User], instance: User, **kwargs: Any) -> None:
    plays_user_lock(user_id=instance.pk)
