from rest_framework import serializers

from consult import services


class MessageCreateSerializer(serializers.Serializer):
    # No trimming or length cap here: services.message_text_validate is the one rule for the API
    # and the websocket alike.
    text = serializers.CharField(trim_whitespace=False, allow_blank=True)

    def validate_text(self, value: str) -> str:
        try:
            return services.message_text_validate(text=value)
        except services.MessageRejected as rejected:
            raise serializers.ValidationError(rejected.message, code=rejected.code) from None

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError({"detail": 'Expected a JSON object such as {"text": "..."}.'})
        return super().to_internal_value(data)
