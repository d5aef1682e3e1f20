"""The teaching pages under /learn/."""

app_name = "teaching"

urlpatterns = []
