"""The teach page and its API, under /learn/teach/ (trainer/teach/views.py)."""

from django.urls import path

from trainer.teach import views

app_name = "teach"

urlpatterns = [
    path("", views.page, name="page"),
    path("api/jobs", views.api_jobs, name="api_jobs"),
    path("api/jobs/<str:job_id>", views.api_job, name="api_job"),
    path("api/jobs/<str:job_id>/cancel", views.api_cancel, name="api_cancel"),
    path("api/predict", views.api_predict, name="api_predict"),
    path("api/class/<str:code>/jobs", views.api_class_jobs, name="api_class_jobs"),
]
