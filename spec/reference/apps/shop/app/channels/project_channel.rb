# frozen_string_literal: true

class ProjectChannel < ApplicationCable::Channel
  def subscribed
    project = current_user.projects.find_by(id: params[:id])
    if project
      stream_from "project_#{project.id}"
    else
      reject
    end
  end
end
