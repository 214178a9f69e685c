from django.contrib import admin
from django.urls import path
from taskboard import views

import syncmsg.django.views

urlpatterns = [
    path("tasks/", views.create_task, name="create-task"),
    path("tasks/<uuid:task_id>/", views.task_detail, name="task-detail"),
    path("tasks/<uuid:task_id>/complete/", views.complete_task, name="complete-task"),
    path("tasks/<uuid:task_id>/events/", views.task_event, name="task-event"),
    path("health/nats/", syncmsg.django.views.health, name="nats-health"),
    path("admin/", admin.site.urls),
]
