from django.contrib import admin

from .models import ProcessedMessage, Task

admin.site.register(Task)
admin.site.register(ProcessedMessage)
