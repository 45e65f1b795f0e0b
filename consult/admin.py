from django.contrib import admin

from consult.models import Consultation, Entity, Message, PromptTemplate, RecordItem, TriageEvent


class MessageInline(admin.TabularInline):
    model = Message
    fk_name = "consultation"
    fields = ("role", "text", "status", "error", "created_at", "processed_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True


class RecordItemInline(admin.TabularInline):
    model = RecordItem
    fields = ("type", "text", "key", "assertion", "first_seen_at")
    readonly_fields = fields
    extra = 0
    can_delete = False


class TriageEventInline(admin.TabularInline):
    model = TriageEvent
    fields = ("rule_id", "urgency", "reason", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Consultation)
class ConsultationAdmin(admin.ModelAdmin):
    list_display = ("id", "status", "urgency", "created_at", "updated_at")
    list_filter = ("status", "urgency")
    readonly_fields = ("id", "created_at", "updated_at", "triage_state")
    exclude = ("token_hash",)
    inlines = [RecordItemInline, TriageEventInline, MessageInline]


class EntityInline(admin.TabularInline):
    model = Entity
    fields = ("type", "text", "start", "end", "score", "assertion", "review_status", "record_item")
    readonly_fields = ("type", "text", "start", "end", "score", "assertion", "record_item")
    extra = 0
    can_delete = False


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("id", "consultation", "role", "status", "created_at", "processed_at")
    list_filter = ("role", "status")
    readonly_fields = ("consultation", "role", "text", "reply_to", "created_at", "processed_at",
                       "model_version", "template_version")
    inlines = [EntityInline]


@admin.register(Entity)
class EntityAdmin(admin.ModelAdmin):
    list_display = ("id", "type", "text", "score", "review_status", "message")
    list_filter = ("type", "review_status")
    list_editable = ("review_status",)
    readonly_fields = ("message", "record_item", "type", "text", "start", "end", "score",
                       "model_version", "template_version")


@admin.register(PromptTemplate)
class PromptTemplateAdmin(admin.ModelAdmin):
    list_display = ("entity_type", "is_active", "version", "soft_prompt_length", "updated_at")
    list_filter = ("is_active",)
    readonly_fields = ("version", "updated_at")

    def save_model(self, request, obj, form, change) -> None:
        # Workers compare versions to decide when to rebuild their queries, so every edit is a new one.
        if change and form.changed_data:
            obj.version += 1
        super().save_model(request, obj, form, change)
