"""Deploy: secrets, migrations, images, traffic switch, history and the pipeline that runs them."""
