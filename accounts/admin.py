from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from .models import User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "email", "movielens_id", "age", "gender", "occupation", "is_staff", "is_active")
    list_filter = (*DjangoUserAdmin.list_filter, "gender", "occupation")
    search_fields = ("username", "email", "first_name", "last_name", "zip_code", "movielens_id")
    ordering = ("id",)
    fieldsets = (
        *DjangoUserAdmin.fieldsets,
        ("Demographics", {"fields": ("age", "gender", "occupation", "zip_code")}),
        ("MovieLens", {"fields": ("movielens_id",)}),
    )
    readonly_fields = ("last_login", "date_joined")
