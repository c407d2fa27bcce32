from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "couponplatform.audit"
    label = "audit"
    verbose_name = "Audit log"
